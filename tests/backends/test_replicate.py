"""The Replicate adapter through the real runner against a fake predictions API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio402.backends.base import Ask
from studio402.backends.replicate import ReplicateBackend
from studio402.catalog import CATALOG
from studio402.config import ProviderSettings
from studio402.errors import ConfigError
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
    mp4_input,
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
FLUX_PRO_VERSION = "285631b5656a1839331cd9af0d82da820e2075db12046d1d061c681b2f206bc6"
MODELS = {
    "veo-3.1": "google/veo-3.1",
    "veo-3.1-fast": "google/veo-3.1-fast",
    "flux-2-pro/generate": f"black-forest-labs/flux-2-pro:{FLUX_PRO_VERSION}",
    "flux-2-max/generate": "deployments/acme/flux-max",
    "flux-2-max/edit": "black-forest-labs/flux-2-max",
    "nano-banana": "google/nano-banana-2",
    "nano-banana-pro": "google/nano-banana-pro",
    "seedance": "bytedance/seedance-2.0",
    "grok/generate": "deployments/acme/veo",  # a model the adapter does not know
}
DEPLOYMENTS = {"acme/flux-max": "black-forest-labs/flux-2-max", "acme/veo": "google/veo-3.1"}
FLUX = {"prompt": "a glass apple", "aspect_ratio": "3:2", "resolution": "0.5 MP", "output_format": "png"}
REFS = ["https://x.example/r1.png", "https://x.example/r2.png"]


server, fake = fake_fixtures(
    lambda: FakeReplicate(deployments=DEPLOYMENTS),
    lambda f: f.reset(Scenario(size=geometry_of("veo-3.1/generate", VEO))),
)


OPTIONS = {"runs": {"deployments/acme/flux-max": "black-forest-labs/flux-2-max"}}


def replicate(fake: FakeReplicate, **changes: Any) -> dict[str, ReplicateBackend]:
    settings = {"models": MODELS, "options": OPTIONS, **changes}
    return {
        "replicate": ReplicateBackend("replicate", provider("replicate", f"{fake.base_url}/v1", **settings))
    }


def backend() -> ReplicateBackend:
    return ReplicateBackend("replicate", provider("replicate", "http://replicate.invalid/v1", models=MODELS))


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
        assert fake.versions[prediction.id] == FLUX_PRO_VERSION
    else:  # POST /v1/deployments/acme/flux-max/predictions
        assert (prediction.path, fake.versions[prediction.id]) == ("acme/flux-max", None)
    # FLUX.2 on Replicate lists no prompt_upsampling
    assert sent(fake)["input"] == {**FLUX, "output_quality": 80, "safety_tolerance": 2}


async def test_defaults_a_model_does_not_list_are_not_sent(fake: FakeReplicate, tmp_path: Path) -> None:
    """thinking_level is in no Replicate Nano Banana schema; camera_fixed in no Seedance 2.0 one."""
    nano = {"prompt": "a teapot", "imageSize": "2K", "thinkingLevel": "high", "aspectRatio": "4:1"}
    seedance = {"prompt": "a kite", "camera_fixed": True, "duration": "6"}
    async with harness_for(tmp_path, replicate(fake)) as h:
        fake.scenario = Scenario(media="image", size=geometry_of("nano-banana/generate", nano))
        assert_complete(await h.run((await h.submit("nano-banana/generate", nano)).id))
        assert sent(fake)["input"] == {"prompt": "a teapot", "resolution": "2K", "aspect_ratio": "4:1"}
        fake.scenario = Scenario(size=geometry_of("seedance/t2v", seedance))
        assert_complete(await h.run((await h.submit("seedance/t2v", seedance)).id))
    assert sent(fake)["input"] == {
        "prompt": "a kite",
        "duration": 6,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "generate_audio": False,
    }


async def test_flux_edits_in_replicate_words(fake: FakeReplicate, tmp_path: Path) -> None:
    """input_images (not image_input), and safety_tolerance within Replicate's 1-5."""
    images = [png_input(("images", 0)), png_input(("images", 1))]
    body = {**FLUX, "images": ["https://x.example/1.png", "https://x.example/2.png"], "safety_tolerance": 0}
    fake.scenario = Scenario(media="image", size=geometry_of("flux-2-max/edit", body))
    async with harness_for(tmp_path, replicate(fake)) as h:
        assert_complete(await h.run((await h.submit("flux-2-max/edit", body, inputs=images)).id))
    got = sent(fake)["input"]
    assert [decode_data_uri(u) for u in got["input_images"]] == [("image/png", i.data) for i in images]
    assert got["safety_tolerance"] == 1 and "prompt_upsampling" not in got


@pytest.mark.parametrize(
    ("route", "body", "refused"),
    [
        ("nano-banana/generate", {"prompt": "x", "imageSize": "512"}, True),
        ("nano-banana/generate", {"prompt": "x", "imageSize": "1K"}, False),
        ("veo-3.1/generate", {"prompt": "x", "referenceImages": REFS, "aspectRatio": "9:16"}, True),
        ("veo-3.1/generate", {"prompt": "x", "referenceImages": REFS, "durationSeconds": "4"}, True),
        ("veo-3.1/generate", {"prompt": "x", "referenceImages": REFS}, False),
        ("veo-3.1-fast/generate", {"prompt": "x", "referenceImages": REFS}, True),
        ("veo-3.1-fast/generate", {"prompt": "x", "image": REFS[0]}, False),
        ("flux-2-max/edit", {"prompt": "x", "images": REFS * 5}, True),
        ("flux-2-max/edit", {"prompt": "x", "images": REFS * 4}, False),
        ("seedance/t2v", {"prompt": "x", "resolution": "1280x720"}, True),
        ("seedance/t2v", {"prompt": "x", "upscaleResolution": "4k"}, True),
        ("seedance/i2v", {"urls": REFS}, True),  # prompt is optional in i2v, required upstream
        ("seedance/i2v", {"urls": REFS, "prompt": "x"}, False),
    ],
)
def test_what_the_model_cannot_do_is_refused_before_payment(
    route: str, body: dict[str, Any], refused: bool
) -> None:
    model, operation = route.split("/")
    canonical = CATALOG.validate(CATALOG.get(model, operation), body).canonical
    reason = backend().refusal(Ask(model, operation, canonical))
    assert (reason is not None) is refused, reason


async def test_a_refused_request_never_reaches_replicate(fake: FakeReplicate, tmp_path: Path) -> None:
    refs = [png_input(("referenceImages", 0)), png_input(("referenceImages", 1))]
    body = {"prompt": "x", "referenceImages": REFS}
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended = await h.run((await h.submit("veo-3.1-fast/generate", body, inputs=refs)).id)
    assert_failed(ended, "backend_unavailable")
    assert fake.attempts == 0


async def test_seedance_media_and_prompt_references(fake: FakeReplicate, tmp_path: Path) -> None:
    refs = [png_input(("urls", 0)), mp4_input(("urls", 1))]
    keyframes = [png_input(("urls", 0)), png_input(("urls", 1))]
    reference = {
        "prompt": "@image1 walks like @video1",
        "mode": "reference",
        "urls": ["https://x.example/a.png", "https://x.example/b.mp4"],
        "urlMediaTypes": ["image", "video"],
    }
    keyframe = {"prompt": "go", "urls": ["https://x.example/a.png", "https://x.example/b.png"]}
    async with harness_for(tmp_path, replicate(fake)) as h:
        assert_complete(await h.run((await h.submit("seedance/i2v", reference, inputs=refs)).id))
        got = sent(fake)["input"]
        assert got["prompt"] == "[Image1] walks like [Video1]"  # Replicate's documented spelling
        assert got["reference_videos"] == [refs[1].url] and len(got["reference_images"]) == 1
        assert_complete(await h.run((await h.submit("seedance/i2v", keyframe, inputs=keyframes)).id))
    assert {"image", "last_frame_image"} <= set(sent(fake)["input"])


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


async def test_refused_input_is_final(fake: FakeReplicate, tmp_path: Path) -> None:
    """A model we do not know gets the generic mapping: Replicate's 422 ends the job (nothing was created)."""
    async with harness_for(tmp_path, replicate(fake)) as h:
        ended = await h.run((await h.submit("grok/generate", {"prompt": "x"})).id)
    assert_failed(ended, "invalid_request")
    assert "aspect_ratio must be one of the following" in str(ended.error_message)
    assert (fake.attempts, fake.created) == (1, 0)


async def test_the_operator_lists_what_an_unknown_model_takes(fake: FakeReplicate, tmp_path: Path) -> None:
    options = {**OPTIONS, "accepts": {"deployments/acme/veo": ["prompt"]}}
    fake.scenario = Scenario(media="image", size=geometry_of("grok/generate", {"prompt": "x"}))
    async with harness_for(tmp_path, replicate(fake, options=options)) as h:
        assert_complete(await h.run((await h.submit("grok/generate", {"prompt": "x"})).id))
    assert sent(fake)["input"] == {"prompt": "x"}


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"accepts": {"google/veo-3.1": "prompt"}}, "options.accepts"),
        ({"accepts": ["prompt"]}, "options.accepts"),
        ({"runs": {"deployments/a/b": 3}}, "options.runs"),
    ],
)
def test_malformed_options_fail_at_start_up(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ReplicateBackend("replicate", ProviderSettings(type="replicate", options=options))


async def test_wrong_key_is_an_auth_failure(fake: FakeReplicate, tmp_path: Path) -> None:
    async with harness_for(tmp_path, replicate(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("veo-3.1/generate", {"prompt": "x"})).id), "upstream_auth")
    assert fake.attempts == 0
