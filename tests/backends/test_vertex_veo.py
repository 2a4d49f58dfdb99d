"""Veo 3.1 on Agent Platform (ex-Vertex) against a fake: full jobs through the real runner."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from studio402.backends.base import Ask, BackendFailure, FailureCode, UpstreamStatus
from studio402.backends.factory import build_backend
from studio402.backends.registry import BackendRegistry
from studio402.backends.vertex_veo import VertexVeoBackend, instance, operation_poll, parameters
from studio402.config import ProviderSettings
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
PATH = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"


def provider_without_url(key: str, **options: Any) -> ProviderSettings:
    return ProviderSettings(type="vertex-veo", api_key=SecretStr(key) if key else None, options=options)


server, fake = fake_fixtures(FakeVertex)


def make_backend(fake: FakeVertex, key: str = TOKEN, **options: Any) -> VertexVeoBackend:
    """A backend on the fake with a static token (the protocol tests; credentials are tested below)."""
    opts = {"project": PROJECT, "location": LOCATION, "auth": "bearer", **options}
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
    no_project = VertexVeoBackend("v", provider("vertex-veo", "http://127.0.0.1:9", "t", auth="bearer"))
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


# -- reference images: Veo takes them only for 8-second 16:9 clips (Google's Veo 3.1 model page) ---------


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"durationSeconds": "8"}, False),
        ({"durationSeconds": "4"}, True),
        ({"durationSeconds": "6"}, True),
        ({"durationSeconds": "8", "aspectRatio": "9:16"}, True),
    ],
)
def test_reference_images_are_refused_before_payment_unless_8s_16_9(
    body: dict[str, str], refused: bool
) -> None:
    backend = VertexVeoBackend("vertex", provider("vertex-veo", "http://127.0.0.1:9", TOKEN, project=PROJECT))
    refs = (image_input("referenceImages", 0),)
    job = backend_job(ROUTE, {"prompt": "a product", "referenceImages": ["https://x/1.png"], **body}, refs)
    reason = backend.refusal(Ask.of_job(job))
    assert (reason is not None) is refused
    # the registry turns a chain's refusal into the 400 before the 402
    assert (BackendRegistry({"vertex": backend}, ["vertex"]).refusal(Ask.of_job(job)) is not None) is refused
    plain = backend_job(ROUTE, {"prompt": "waves", **body})
    assert backend.refusal(Ask.of_job(plain)) is None  # without reference images any duration goes


async def test_the_runner_never_submits_reference_images_with_a_short_clip(
    harness: JobHarness, fake: FakeVertex
) -> None:
    refs = [image_input("referenceImages", 0, (64, 64))]
    body = {"prompt": "a product", "durationSeconds": "4", "referenceImages": ["https://x/1.png"]}
    ended = await harness.run((await harness.submit(FAST_ROUTE, body, inputs=refs)).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "backend_unavailable")
    assert fake.submissions == 0  # the upstream would have refused it (the strict fake does: below)


async def test_the_fake_refuses_reference_images_with_a_short_clip(fake: FakeVertex) -> None:
    refs = (image_input("referenceImages", 0, (64, 64)),)
    job = backend_job(
        FAST_ROUTE, {"prompt": "p", "durationSeconds": "4", "referenceImages": ["https://x/1.png"]}, refs
    )
    body = {"instances": [instance(job)], "parameters": parameters(job, {})}
    async with httpx.AsyncClient(base_url=fake.url, headers={"authorization": f"Bearer {TOKEN}"}) as client:
        resp = await client.post(f"/v1/{PATH}/veo-3.1-fast-generate-001:predictLongRunning", json=body)
    assert (
        resp.status_code == 400 and "only supports a durationSeconds of 8" in resp.json()["error"]["message"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["parameters"].update(durationSeconds="8"), "durationSeconds"),
        (lambda b: b["parameters"].update(sampleCount=5), "sampleCount"),
        (lambda b: b["parameters"].update(resolution="4k"), "resolution"),
        (lambda b: b["parameters"].update(numberOfVideos=1), "Unknown name"),
        (
            lambda b: b["instances"][0].update(
                image={"bytesBase64Encoded": "data:image/png;base64,AA", "mimeType": "image/png"}
            ),
            "decoded",
        ),
        (
            lambda b: b["instances"][0].update(image={"gcsUri": "gs://b/a.gif", "mimeType": "image/gif"}),
            "mimeType",
        ),
        (
            lambda b: b["instances"][0].update(lastFrame={"gcsUri": "gs://b/a.png", "mimeType": "image/png"}),
            "lastFrame needs",
        ),
    ],
)
async def test_the_fake_refuses_what_the_api_refuses(
    fake: FakeVertex, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    job = backend_job(ROUTE, {"prompt": "p", "durationSeconds": "8"})
    body = {"instances": [instance(job)], "parameters": parameters(job, {})}
    change(body)
    async with httpx.AsyncClient(base_url=fake.url, headers={"authorization": f"Bearer {TOKEN}"}) as client:
        resp = await client.post(f"/v1/{PATH}/veo-3.1-generate-001:predictLongRunning", json=body)
    assert resp.status_code == 400 and message in resp.json()["error"]["message"], resp.text
    assert not fake.operations


# -- express mode: an API key without a project speaks to the global host -------------------------------


def test_express_mode_uses_the_global_host() -> None:
    express = VertexVeoBackend("v", provider_without_url(API_KEY, auth="api_key", location="europe-west4"))
    assert str(express.base_url) == "https://aiplatform.googleapis.com"
    regional = VertexVeoBackend("v", provider_without_url(API_KEY, auth="api_key", project=PROJECT))
    assert str(regional.base_url) == "https://us-central1-aiplatform.googleapis.com"


def test_an_api_key_alone_means_express_mode() -> None:
    backend = VertexVeoBackend("v", provider_without_url(API_KEY))
    assert backend.missing_settings() == [] and backend.supports(ROUTE)
    assert backend.model_path("m") == "publishers/google/models/m"
