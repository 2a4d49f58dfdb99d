"""The Replicate adapter through the real runner against a fake predictions API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio402.backends.replicate import ReplicateBackend
from studio402.jobs.model import JobStatus
from tests.backends.upstream_support import (
    DEADLINE,
    ENDINGS,
    assert_complete,
    assert_failed,
    cancel_midway,
    fake_fixtures,
    geometry_of,
    harness_for,
    image_size,
    png_input,
    provider,
    restart_midway,
    run_recording_sleeps,
    sent,
    video_size,
)
from tests.fakes.fake_server import Outcome, Scenario, decode_data_uri
from tests.fakes.replicate import THROTTLE_SECONDS, FakeReplicate

VEO = {
    "prompt": "a lighthouse in a storm",
    "durationSeconds": "4",
    "aspectRatio": "16:9",
    "image": "https://x.example/first.png",
    "lastFrame": "https://x.example/last.png",
}
VERSION = "ab" * 32
MODELS = {
    "veo-3.1": "google/veo-3.1",
    "flux-2-pro/generate": f"black-forest-labs/flux-2-pro:{VERSION}",
    "flux-2-max/generate": "deployments/acme/flux-max",
}
FLUX = {"prompt": "a glass apple", "aspect_ratio": "3:2", "resolution": "0.5 MP", "output_format": "png"}


server, fake = fake_fixtures(
    FakeReplicate, lambda f: f.reset(Scenario(size=geometry_of("veo-3.1/generate", VEO)))
)


def replicate(fake: FakeReplicate, **changes: Any) -> dict[str, ReplicateBackend]:
    settings = {"models": MODELS, **changes}
    return {
        "replicate": ReplicateBackend("replicate", provider("replicate", f"{fake.base_url}/v1", **settings))
    }


async def test_official_model_with_first_and_last_frame(fake: FakeReplicate, tmp_path: Path) -> None:
    first, last = png_input(("image",)), png_input(("lastFrame",), (48, 64))
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended = await h.run((await h.submit("veo-3.1/generate", VEO, inputs=[first, last])).id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == geometry_of("veo-3.1/generate", VEO)
    sent_input = sent(fake)["input"]
    assert {k: v for k, v in sent_input.items() if k not in ("image", "last_frame")} == {
        "prompt": "a lighthouse in a storm",
        "duration": 4,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert decode_data_uri(sent_input["image"]) == ("image/png", first.data)
    assert decode_data_uri(sent_input["last_frame"]) == ("image/png", last.data)
    assert next(iter(fake.tasks.values())).path == "google/veo-3.1" and fake.prefer_headers == []


@pytest.mark.parametrize("route", ["flux-2-pro/generate", "flux-2-max/generate"])
async def test_versions_and_deployments_give_images(fake: FakeReplicate, tmp_path: Path, route: str) -> None:
    size = geometry_of(route, FLUX)
    fake.scenario = Scenario(media="image", size=size)
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended = await h.run((await h.submit(route, FLUX)).id)
        assert_complete(ended)
        assert image_size(await h.result_bytes(ended)) == size
    prediction = next(iter(fake.tasks.values()))
    if route.startswith("flux-2-pro"):  # POST /v1/predictions {version: <id>}
        assert fake.versions[prediction.id] == VERSION
    else:  # POST /v1/deployments/acme/flux-max/predictions
        assert (prediction.path, fake.versions[prediction.id]) == ("acme/flux-max", None)


@pytest.mark.parametrize(("outcome", "code"), ENDINGS)
async def test_prediction_endings(fake: FakeReplicate, tmp_path: Path, outcome: Outcome, code: str) -> None:
    fake.scenario = Scenario(outcome)
    async with harness_for(tmp_path, replicate(fake)) as h:
        assert_failed(await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id), code)
    assert (fake.attempts, fake.created) == (1, 1)


@pytest.mark.parametrize(("header", "waited"), [(None, float(THROTTLE_SECONDS)), ("2", 2.0)])
async def test_throttling_waits_as_told(
    fake: FakeReplicate, tmp_path: Path, header: str | None, waited: float
) -> None:
    fake.scenario.submit_errors, fake.scenario.retry_after = [429], header
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended, sleeps = await run_recording_sleeps(
            h, (await h.submit("veo-3.1/generate", {"prompt": "x"})).id
        )
    assert_complete(ended)
    assert sleeps[0] == waited and (fake.attempts, fake.created) == (2, 1)


async def test_server_errors_retried_then_persistent_failure(fake: FakeReplicate, tmp_path: Path) -> None:
    async with harness_for(tmp_path, replicate(fake)) as h:
        fake.scenario.submit_errors, fake.scenario.poll_errors = [500], [502, 503]
        assert_complete(await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id))
        fake.scenario.submit_errors = [503] * 10
        assert_failed(await h.run((await h.submit("veo-3.1/generate", {"prompt": "y"})).id), "upstream_error")
    assert fake.created == 1


async def test_never_finishing_prediction_times_out_with_its_progress(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.scenario = Scenario(Outcome.NEVER, queued_polls=0)
    async with harness_for(tmp_path, replicate(fake), config=DEADLINE) as h:
        ended = await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id)
    assert_failed(ended, "timeout")
    assert ended.progress == 40 and fake.cancels == 1


async def test_restart_resumes_the_persisted_prediction(fake: FakeReplicate, tmp_path: Path) -> None:
    fake.scenario.queued_polls = 3
    async with harness_for(tmp_path, replicate(fake)) as h:
        crashed, ended = await restart_midway(h, (await h.submit("veo-3.1/generate", {"prompt": "x"})).id)
    assert_complete(ended)
    assert crashed.upstream_id == ended.upstream_id and (fake.attempts, fake.created) == (1, 1)


async def test_cancel_reaches_the_prediction(fake: FakeReplicate, tmp_path: Path) -> None:
    fake.scenario = Scenario(Outcome.NEVER)
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended = await cancel_midway(h, (await h.submit("veo-3.1/generate", {"prompt": "x"})).id)
    assert ended.status is JobStatus.CANCELED
    assert fake.cancels == 1 and fake.tasks[str(ended.upstream_id)].canceled


async def test_refused_input_is_final(tmp_path: Path) -> None:
    server = FakeReplicate(allowed=("prompt",))
    async with server.running(), harness_for(tmp_path, replicate(server)) as h:
        assert_failed(
            await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id), "invalid_request"
        )
    assert (server.attempts, server.created) == (1, 0)


async def test_wrong_key_is_an_auth_failure(fake: FakeReplicate, tmp_path: Path) -> None:
    async with harness_for(tmp_path, replicate(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id), "upstream_auth")
    assert fake.attempts == 0
