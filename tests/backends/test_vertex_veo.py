"""Veo 3.1 on Agent Platform (ex-Vertex) against a fake: full jobs through the real runner."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from studio402.backends.base import BackendFailure, FailureCode, UpstreamStatus
from studio402.backends.factory import build_backend
from studio402.backends.vertex_veo import VertexVeoBackend, operation_poll, parameters
from studio402.errors import ConfigError
from studio402.jobs.model import JobStatus
from tests.backends.flows import (
    SHORT_DEADLINE,
    backend_job,
    cancel_mid_job,
    image_input,
    provider,
    video_facts,
)
from tests.backends.harness import JobHarness
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.vertex import API_KEY, LOCATION, PROJECT, RAI_REASON, TOKEN, FakeVertex

ROUTE = "veo-3.1/generate"
FAST_ROUTE = "veo-3.1-fast/generate"


server, fake = fake_fixtures(FakeVertex)


def make_backend(fake: FakeVertex, key: str = TOKEN, **options: Any) -> VertexVeoBackend:
    opts = {"project": PROJECT, "location": LOCATION, **options}
    return VertexVeoBackend.from_settings("vertex", provider("vertex-veo", fake.url, key, **opts))


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeVertex) -> AsyncIterator[JobHarness]:
    async with harness_for(tmp_path, {"vertex": make_backend(fake)}) as h:
        yield h


async def test_text_to_video_stores_the_inline_video(harness: JobHarness, fake: FakeVertex) -> None:
    body = {"prompt": "waves", "durationSeconds": "4", "negativePrompt": "people"}
    ended = await harness.run((await harness.submit(ROUTE, body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    width, height, seconds = video_facts(await harness.result_bytes(ended))
    assert (width, height) == (1280, 720) and seconds == pytest.approx(4.0)
    assert (await harness.result_bytes(ended, "thumbnail"))[:4] == b"RIFF"  # made by the runner (WebP)
    sent = fake.accepted[-1]
    assert sent["instances"] == [{"prompt": "waves"}]
    assert sent["parameters"]["negativePrompt"] == "people" and sent["parameters"]["durationSeconds"] == 4
    assert next(iter(fake.operations)).startswith(
        f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/veo-3.1-generate-001/operations/"
    )


async def test_first_and_last_frames_go_inline(harness: JobHarness, fake: FakeVertex) -> None:
    first, last = image_input("image", None, (96, 64)), image_input("lastFrame", None, (96, 64), (0, 0, 200))
    body = {
        "prompt": "morph",
        "durationSeconds": 4,
        "aspectRatio": "9:16",
        "image": "https://x/a.png",
        "lastFrame": "https://x/b.png",
    }
    ended = await harness.run((await harness.submit(FAST_ROUTE, body, inputs=[first, last])).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert video_facts(await harness.result_bytes(ended))[:2] == (720, 1280)
    inst = fake.accepted[-1]["instances"][0]
    assert base64.b64decode(inst["image"]["bytesBase64Encoded"]) == first.data
    assert base64.b64decode(inst["lastFrame"]["bytesBase64Encoded"]) == last.data
    assert inst["image"]["mimeType"] == "image/png"
    assert "veo-3.1-fast-generate-001" in next(iter(fake.operations))


async def test_reference_images_are_assets(harness: JobHarness, fake: FakeVertex) -> None:
    refs = [image_input("referenceImages", i, (64, 64), (i * 90, 10, 10)) for i in range(2)]
    body = {
        "prompt": "a product",
        "durationSeconds": "8",
        "referenceImages": ["https://x/1.png", "https://x/2.png"],
    }
    ended = await harness.run((await harness.submit(ROUTE, body, inputs=refs)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    sent = fake.accepted[-1]["instances"][0]["referenceImages"]
    assert [r["referenceType"] for r in sent] == ["asset", "asset"]
    assert [base64.b64decode(r["image"]["bytesBase64Encoded"]) for r in sent] == [r.data for r in refs]


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("rai_filtered", "no_media"),
        ("moderated", "moderated"),
        ("failed", "upstream_error"),
        ("gcs", "upstream_error"),
    ],
)
async def test_operations_ending_without_a_video(
    harness: JobHarness, fake: FakeVertex, scenario: str, code: str
) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x", "durationSeconds": 4})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, code)
    assert fake.submissions == 1
    if scenario == "rai_filtered":
        assert "You will not be charged" in (ended.error_message or "")


@pytest.mark.parametrize("scenario", ["rate_limited_once", "server_error_once", "poll_error_once"])
async def test_transient_errors_are_retried(harness: JobHarness, fake: FakeVertex, scenario: str) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x", "durationSeconds": 4})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert len(fake.operations) == 1


async def test_persistent_unavailability_fails_upstream_error(harness: JobHarness, fake: FakeVertex) -> None:
    fake.scenario = "server_error_always"
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert not fake.operations and fake.submissions == harness.config.submit_attempts


async def test_never_done_times_out_and_cancels_upstream(tmp_path: Path, fake: FakeVertex) -> None:
    async with harness_for(tmp_path, {"vertex": make_backend(fake)}, config=SHORT_DEADLINE) as h:
        fake.scenario = "never_done"
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "timeout")
    assert fake.cancels == [ended.upstream_id]


async def test_cancel_cancels_the_operation(harness: JobHarness, fake: FakeVertex) -> None:
    fake.hold = True
    ended = await cancel_mid_job(harness, (await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.CANCELED
    assert fake.cancels == [ended.upstream_id]
    assert fake.operations[fake.cancels[0]].result == {"error": {"code": 1, "message": "CANCELLED"}}


async def test_restart_resumes_the_operation_without_resubmitting(
    tmp_path: Path, harness: JobHarness, fake: FakeVertex
) -> None:
    fake.hold = True
    job = await harness.submit(ROUTE, {"prompt": "x", "durationSeconds": 4})
    crashed = await harness.run_until_upstream(job.id)
    assert crashed.upstream_id in fake.operations and fake.submissions == 1
    fake.hold = False
    async with harness_for(tmp_path, {"vertex": make_backend(fake)}) as restarted:
        ended = await restarted.run(job.id)
    assert ended.status is JobStatus.COMPLETE, restarted.dump(ended)
    assert fake.submissions == 1 and len(fake.operations) == 1
    assert fake.operations[str(crashed.upstream_id)].polls >= 1


async def test_api_key_mode_uses_the_key_header_and_no_project(tmp_path: Path, fake: FakeVertex) -> None:
    backend = VertexVeoBackend("vertex", provider("vertex-veo", fake.url, API_KEY, auth="api_key"))
    assert backend.missing_settings() == []
    async with harness_for(tmp_path, {"vertex": backend}) as h:
        ended = await h.run((await h.submit(FAST_ROUTE, {"prompt": "x", "durationSeconds": 4})).id)
    assert ended.status is JobStatus.COMPLETE, h.dump(ended)
    assert str(ended.upstream_id).startswith("publishers/google/models/veo-3.1-fast-generate-001/operations/")
    assert all("authorization" not in r.headers for r in fake.received)


async def test_a_refused_token_is_an_auth_failure(fake: FakeVertex) -> None:
    backend = make_backend(fake, key="ya29.expired")
    failure = await failure_of(backend, backend.submit(backend_job(ROUTE, {"prompt": "x"})))
    assert failure.failure is FailureCode.AUTH and not failure.accepted


def test_parameters_map_the_canonical_body() -> None:
    job = backend_job(
        ROUTE, {"prompt": "p", "seconds": 6, "aspect_ratio": "9:16", "resolution": "1080p"}, seed=2**33 + 5
    )
    assert parameters(job, {"person_generation": "allow_adult"}) == {
        "sampleCount": 1,
        "durationSeconds": 6,
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "generateAudio": True,
        "seed": 5,
        "personGeneration": "allow_adult",
    }
    assert parameters(job, {"generate_audio": False})["generateAudio"] is False


def test_operation_outcomes() -> None:
    assert operation_poll({"name": "n"}).status is UpstreamStatus.RUNNING
    with pytest.raises(BackendFailure) as info:
        operation_poll(
            {
                "name": "n",
                "done": True,
                "response": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]},
            }
        )
    assert info.value.failure is FailureCode.NO_MEDIA and info.value.accepted and not info.value.retryable
    with pytest.raises(BackendFailure) as info:
        operation_poll({"name": "n", "done": True, "response": {}})
    assert info.value.failure is FailureCode.NO_MEDIA
    with pytest.raises(BackendFailure) as info:
        operation_poll({"name": "n", "done": True, "error": {"code": 1, "message": "CANCELLED"}})
    assert info.value.failure is FailureCode.CANCELED


def test_settings() -> None:
    no_project = VertexVeoBackend("v", provider("vertex-veo", "http://127.0.0.1:9", "t"))
    assert no_project.missing_settings() == ["options.project"] and not no_project.supports(ROUTE)
    assert VertexVeoBackend.default_base("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert VertexVeoBackend.default_base("global") == "https://aiplatform.googleapis.com"
    with pytest.raises(ConfigError):
        VertexVeoBackend("v", provider("vertex-veo", "http://127.0.0.1:9", "t", auth="service_account"))


async def test_only_operation_names_are_polled(fake: FakeVertex) -> None:
    backend = make_backend(fake)
    failure = await failure_of(
        backend, backend.poll(backend_job(ROUTE, {"prompt": "x"}), "../../other/api:call")
    )
    assert failure.failure is FailureCode.NOT_FOUND and not fake.received


def test_built_from_the_factory_table() -> None:
    backend = build_backend("mine", provider("vertex-veo", "http://127.0.0.1:9", "k", project="p"))
    assert isinstance(backend, VertexVeoBackend) and backend.name == "mine"
