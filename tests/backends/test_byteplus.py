"""The Seedance adapter through the real runner against a fake BytePlus ModelArk task API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio402.backends.base import Ask
from studio402.backends.byteplus import FAST_MODEL, PRO_MODEL, SeedanceBackend
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.jobs.model import JobStatus
from studio402.jobs.runner import job_seed
from tests.backends.upstream_support import (
    DEADLINE,
    ENDINGS,
    assert_complete,
    assert_failed,
    audio_input,
    cancel_midway,
    fake_fixtures,
    geometry_of,
    harness_for,
    mp4_input,
    png_input,
    provider,
    restart_midway,
    run_recording_sleeps,
    sent,
    video_size,
)
from tests.fakes.byteplus import FakeArk
from tests.fakes.fake_server import Outcome, Scenario, decode_data_uri

T2V = {"prompt": "a paper boat on a river", "aspectRatio": "9:16", "outputResolution": "480p", "duration": 4}
URL = "https://x.example/in"


server, fake = fake_fixtures(FakeArk)


def seedance(fake: FakeArk, **changes: Any) -> dict[str, SeedanceBackend]:
    return {
        "byteplus": SeedanceBackend("byteplus", provider("byteplus", f"{fake.base_url}/api/v3", **changes))
    }


async def test_t2v_stores_a_video_of_the_requested_size(fake: FakeArk, tmp_path: Path) -> None:
    async with harness_for(tmp_path, seedance(fake)) as h:
        job = await h.submit("seedance-fast/t2v", T2V)
        ended = await h.run(job.id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == geometry_of("seedance-fast/t2v", T2V)
    assert sent(fake) == {
        "model": FAST_MODEL,
        "content": [{"type": "text", "text": T2V["prompt"]}],
        "ratio": "9:16",
        "resolution": "480p",
        "duration": 4,
        "seed": job_seed(job),
        "camera_fixed": False,
        "generate_audio": False,
        "watermark": False,
    }


async def test_keyframes_go_inline_with_first_and_last_frame_roles(fake: FakeArk, tmp_path: Path) -> None:
    first, last = png_input(("urls", 0)), png_input(("urls", 1), (48, 64))
    body = {"prompt": "morph", "urls": [URL + "1.png", URL + "2.png"], "seed": 7, "camera_fixed": True}
    async with harness_for(tmp_path, seedance(fake)) as h:
        assert_complete(await h.run((await h.submit("seedance/i2v", body, inputs=[first, last])).id))
    body_sent = sent(fake)
    assert body_sent["model"] == PRO_MODEL and body_sent["seed"] == 7 and body_sent["camera_fixed"] is True
    images = body_sent["content"][1:]
    assert [i["role"] for i in images] == ["first_frame", "last_frame"]
    assert [decode_data_uri(i["image_url"]["url"]) for i in images] == [
        ("image/png", first.data),
        ("image/png", last.data),
    ]


async def test_reference_mode_sends_images_inline_and_videos_audio_by_url(
    fake: FakeArk, tmp_path: Path
) -> None:
    inputs = [png_input(("urls", 0)), mp4_input(("urls", 1)), audio_input(("audioUrls", 0))]
    body = {
        "prompt": "@image1 dances like @video1 to @audio1",
        "mode": "reference",
        "generate_audio": True,
        "urls": [URL + ".png", URL + ".mp4"],
        "urlMediaTypes": ["image", "video"],
        "audioUrls": [URL + ".wav"],
    }
    async with harness_for(tmp_path, seedance(fake)) as h:
        assert_complete(await h.run((await h.submit("seedance-fast/i2v", body, inputs=inputs)).id))
    media = sent(fake)["content"][1:]
    assert [(m["type"], m["role"]) for m in media] == [
        ("image_url", "reference_image"),
        ("video_url", "reference_video"),
        ("audio_url", "reference_audio"),
    ]
    assert media[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert media[1]["video_url"]["url"] == inputs[1].url and media[2]["audio_url"]["url"] == inputs[2].url
    assert sent(fake)["generate_audio"] is True


async def test_exact_pixel_size_becomes_ratio_and_tier(fake: FakeArk, tmp_path: Path) -> None:
    async with harness_for(tmp_path, seedance(fake)) as h:
        assert_complete(await h.run((await h.submit("seedance/t2v", {**T2V, "resolution": "1280x540"})).id))
    assert (sent(fake)["ratio"], sent(fake)["resolution"]) == ("21:9", "720p")


async def test_4k_upscale_is_refused_before_any_submission(fake: FakeArk, tmp_path: Path) -> None:
    async with harness_for(tmp_path, seedance(fake)) as h:
        ended = await h.run((await h.submit("seedance/t2v", {**T2V, "upscaleResolution": "4k"})).id)
    assert_failed(ended, "backend_unavailable")
    assert fake.attempts == 0


def reference(kind: MediaKind, index: int, seconds: float) -> InputFacts:
    field = "audioUrls" if kind is MediaKind.AUDIO else "urls"
    return InputFacts((field, index), kind, "", 1000, 64, 48, seconds)


@pytest.mark.parametrize(
    ("params", "inputs", "refused"),
    [
        ({"upscaleResolution": "4k"}, (), True),  # the API has no upscale
        ({}, (), False),
        ({"mode": "reference"}, (reference(MediaKind.VIDEO, 0, 8), reference(MediaKind.VIDEO, 1, 7)), False),
        ({"mode": "reference"}, (reference(MediaKind.VIDEO, 0, 8), reference(MediaKind.VIDEO, 1, 8)), True),
        ({"mode": "reference"}, (reference(MediaKind.AUDIO, 0, 16),), True),
    ],
)
def test_what_seedance_cannot_take_is_refused_before_payment(
    params: dict[str, Any], inputs: tuple[InputFacts, ...], refused: bool
) -> None:
    backend = SeedanceBackend("byteplus", provider("byteplus", "http://127.0.0.1:9"))
    reason = backend.refusal(Ask("seedance", "i2v", {"prompt": "p", **params}, inputs))
    assert (reason is not None) is refused, reason


@pytest.mark.parametrize(("outcome", "code"), ENDINGS)
async def test_task_endings(fake: FakeArk, tmp_path: Path, outcome: Outcome, code: str) -> None:
    fake.scenario = Scenario(outcome)
    async with harness_for(tmp_path, seedance(fake)) as h:
        assert_failed(await h.run((await h.submit("seedance-fast/t2v", T2V)).id), code)
    assert fake.created == 1


async def test_input_moderation_is_final_at_submission(fake: FakeArk, tmp_path: Path) -> None:
    fake.scenario = Scenario(Outcome.MODERATED)
    async with harness_for(tmp_path, seedance(fake)) as h:
        ended = await h.run((await h.submit("seedance-fast/t2v", {**T2V, "prompt": "forbidden things"})).id)
    assert_failed(ended, "moderated")
    assert (fake.attempts, fake.created) == (1, 0)


async def test_rate_limit_then_success_honours_retry_after(fake: FakeArk, tmp_path: Path) -> None:
    fake.scenario = Scenario(submit_errors=[429, 429], retry_after="2")
    async with harness_for(tmp_path, seedance(fake)) as h:
        ended, sleeps = await run_recording_sleeps(h, (await h.submit("seedance-fast/t2v", T2V)).id)
    assert_complete(ended)
    assert sleeps[:2] == [2.0, 2.0] and (fake.attempts, fake.created) == (3, 1)


async def test_server_errors_retried_then_persistent_failure(fake: FakeArk, tmp_path: Path) -> None:
    async with harness_for(tmp_path, seedance(fake)) as h:
        fake.scenario = Scenario(submit_errors=[500], poll_errors=[503, 502])
        assert_complete(await h.run((await h.submit("seedance-fast/t2v", T2V)).id))
        fake.scenario = Scenario(submit_errors=[500] * 10)
        assert_failed(
            await h.run((await h.submit("seedance-fast/t2v", {**T2V, "duration": 5})).id), "upstream_error"
        )
    assert fake.created == 1


async def test_never_finishing_task_times_out(fake: FakeArk, tmp_path: Path) -> None:
    fake.scenario = Scenario(Outcome.NEVER)
    async with harness_for(tmp_path, seedance(fake), config=DEADLINE) as h:
        assert_failed(await h.run((await h.submit("seedance-fast/t2v", T2V)).id), "timeout")


async def test_restart_resumes_the_persisted_task(fake: FakeArk, tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: the new worker's claim and resume go through the job store."""
    fake.scenario = Scenario(queued_polls=3, running_polls=2)
    async with harness_for(tmp_path, seedance(fake), url=db_url) as h:
        crashed, ended = await restart_midway(h, (await h.submit("seedance-fast/t2v", T2V)).id)
    assert_complete(ended)
    assert crashed.upstream_id == ended.upstream_id and str(ended.upstream_id).startswith("cgt-")
    assert (fake.attempts, fake.created) == (1, 1)


async def test_cancel_of_a_queued_task_reaches_the_upstream(
    fake: FakeArk, tmp_path: Path, db_url: str
) -> None:
    fake.scenario = Scenario(queued_polls=10_000)
    async with harness_for(tmp_path, seedance(fake), url=db_url) as h:
        ended = await cancel_midway(h, (await h.submit("seedance-fast/t2v", T2V)).id)
    assert ended.status is JobStatus.CANCELED
    task = fake.tasks[str(ended.upstream_id)]
    assert fake.cancels == 1 and task.canceled


async def test_cancel_of_a_running_task_is_refused_upstream_but_the_job_is_canceled(
    fake: FakeArk, tmp_path: Path
) -> None:
    fake.scenario = Scenario(Outcome.NEVER, queued_polls=0)
    async with harness_for(tmp_path, seedance(fake)) as h:
        ended = await cancel_midway(h, (await h.submit("seedance-fast/t2v", T2V)).id)
    assert ended.status is JobStatus.CANCELED
    assert fake.cancels == 1 and not fake.tasks[str(ended.upstream_id)].canceled


async def test_models_override_and_wrong_model(fake: FakeArk, tmp_path: Path) -> None:
    models = {"seedance-fast/t2v": "seedance-1-5-pro-251215", "seedance": "no-such-model"}
    async with harness_for(tmp_path, seedance(fake, models=models)) as h:
        assert_complete(await h.run((await h.submit("seedance-fast/t2v", T2V)).id))
        assert sent(fake)["model"] == "seedance-1-5-pro-251215"
        assert_failed(await h.run((await h.submit("seedance/t2v", T2V)).id), "upstream_not_found")


async def test_wrong_key_is_an_auth_failure(fake: FakeArk, tmp_path: Path) -> None:
    async with harness_for(tmp_path, seedance(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("seedance-fast/t2v", T2V)).id), "upstream_auth")
    assert fake.attempts == 0  # refused at the door
