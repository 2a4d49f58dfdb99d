"""The xAI adapter through the real runner against a fake xAI server: Grok images and Grok video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio402.backends.xai import XaiBackend
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
    video_size,
)
from tests.fakes.fake_server import Outcome, Scenario, decode_data_uri
from tests.fakes.xai import FakeXai

IMAGE = {"prompt": "a red fox", "aspect_ratio": "16:9"}
VIDEO = {"prompt": "waves at dusk", "duration": "3", "resolution": "480p", "aspect_ratio": "9:16"}


server, fake = fake_fixtures(FakeXai)


def xai(fake: FakeXai, **changes: Any) -> dict[str, XaiBackend]:
    return {"xai": XaiBackend("xai", provider("xai", f"{fake.base_url}/v1", **changes))}


async def test_generate_stores_an_image_of_the_requested_size(fake: FakeXai, tmp_path: Path) -> None:
    async with harness_for(tmp_path, xai(fake)) as h:
        ended = await h.run((await h.submit("grok/generate", IMAGE)).id)
        assert_complete(ended)
        assert image_size(await h.result_bytes(ended)) == geometry_of("grok/generate", IMAGE)
    body = fake.tasks.popitem()[1].body
    assert body["model"] == "grok-imagine-image" and body["response_format"] == "b64_json"
    assert body["aspect_ratio"] == "16:9" and body["n"] == 1


async def test_b64_json_as_a_data_uri_is_delivered(fake: FakeXai, tmp_path: Path) -> None:
    """xAI's image guide shows `b64_json` as `data:image/...;base64,...` (xai_sdk splits on `base64,`): the
    billed image is delivered either way, never failed as broken base64."""
    fake.data_uri_images = True
    async with harness_for(tmp_path, xai(fake)) as h:
        ended = await h.run((await h.submit("grok/generate", IMAGE)).id)
        assert_complete(ended)
        assert image_size(await h.result_bytes(ended)) == geometry_of("grok/generate", IMAGE)


async def test_edit_sends_the_verified_inputs_as_data_uris(fake: FakeXai, tmp_path: Path) -> None:
    inputs = [png_input(("images", 0)), png_input(("images", 1), (32, 32))]
    body = {**IMAGE, "images": ["https://x.example/a.png", "https://x.example/b.png"]}
    async with harness_for(tmp_path, xai(fake)) as h:
        ended = await h.run((await h.submit("grok/edit", body, inputs=inputs)).id)
    assert_complete(ended)
    sent = fake.tasks.popitem()[1].body["images"]
    assert [decode_data_uri(i["url"]) for i in sent] == [("image/png", m.data) for m in inputs]
    assert {i["type"] for i in sent} == {"image_url"}


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.MODERATED, "moderated"),  # `block_reason` set, no image
        (Outcome.FLAGGED, "moderated"),  # `respect_moderation: false`
        (Outcome.NO_MEDIA, "no_media"),
    ],
)
async def test_image_refusals(fake: FakeXai, tmp_path: Path, outcome: Outcome, code: str) -> None:
    fake.scenario = Scenario(outcome)
    async with harness_for(tmp_path, xai(fake)) as h:
        assert_failed(await h.run((await h.submit("grok/generate", IMAGE)).id), code)
    assert fake.attempts == 1


async def test_rate_limit_waits_retry_after_then_succeeds(fake: FakeXai, tmp_path: Path) -> None:
    fake.scenario = Scenario(submit_errors=[429], retry_after="3")
    async with harness_for(tmp_path, xai(fake)) as h:
        ended, sleeps = await run_recording_sleeps(h, (await h.submit("grok/generate", IMAGE)).id)
    assert_complete(ended)
    assert sleeps[0] == 3.0
    assert (fake.attempts, fake.created) == (2, 1)


async def test_server_errors_are_retried_then_give_up(fake: FakeXai, tmp_path: Path) -> None:
    async with harness_for(tmp_path, xai(fake)) as h:
        fake.scenario = Scenario(submit_errors=[503])
        assert_complete(await h.run((await h.submit("grok/generate", IMAGE)).id))
        assert fake.attempts == 2
        fake.scenario = Scenario(submit_errors=[503] * 10)
        assert_failed(
            await h.run((await h.submit("grok/generate", {**IMAGE, "prompt": "x"})).id), "upstream_error"
        )
    assert fake.attempts == 2 + h.config.submit_attempts


async def test_lost_image_answer_is_not_sent_again(tmp_path: Path) -> None:
    """A read timeout after the request went out may still be billed upstream: fail, never resend. (Its own
    server: the slow answer must not land in another test's counters.)"""
    slow = FakeXai(Scenario(delay=1.0))
    async with slow.running(), harness_for(tmp_path, xai(slow, timeout_seconds=0.2)) as h:
        assert_failed(await h.run((await h.submit("grok/generate", IMAGE)).id), "timeout")
    assert slow.attempts == 1


async def test_wrong_key_is_an_auth_failure(fake: FakeXai, tmp_path: Path) -> None:
    async with harness_for(tmp_path, xai(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("grok/generate", IMAGE)).id), "upstream_auth")


async def test_video_t2v_and_i2v(fake: FakeXai, tmp_path: Path) -> None:
    async with harness_for(tmp_path, xai(fake)) as h:
        t2v = await h.run((await h.submit("grok-video/generate", VIDEO)).id)
        assert_complete(t2v)
        assert video_size(await h.result_bytes(t2v)) == geometry_of("grok-video/generate", VIDEO)
        first = png_input(("image",))
        i2v = await h.run(
            (
                await h.submit(
                    "grok-video/generate", {**VIDEO, "image": "https://x.example/f.png"}, inputs=[first]
                )
            ).id
        )
        assert_complete(i2v)
        assert i2v.result is not None and "thumbnail" in i2v.result
    t2v_body, i2v_body = (task.body for task in fake.tasks.values())
    assert t2v_body == {
        "model": "grok-imagine-video",
        "prompt": "waves at dusk",
        "duration": 3,
        "aspect_ratio": "9:16",
        "resolution": "480p",
    }
    assert decode_data_uri(i2v_body["image"]["url"]) == ("image/png", first.data)


@pytest.mark.parametrize(("outcome", "code"), ENDINGS)
async def test_video_endings(fake: FakeXai, tmp_path: Path, outcome: Outcome, code: str) -> None:
    fake.scenario = Scenario(outcome)
    async with harness_for(tmp_path, xai(fake)) as h:
        assert_failed(await h.run((await h.submit("grok-video/generate", VIDEO)).id), code)
    assert fake.downloads == 0  # a moderated video is never fetched


async def test_video_poll_errors_and_202_pending_are_waited_out(fake: FakeXai, tmp_path: Path) -> None:
    fake.scenario = Scenario(queued_polls=3, poll_errors=[500, 429, 502])
    async with harness_for(tmp_path, xai(fake)) as h:
        assert_complete(await h.run((await h.submit("grok-video/generate", VIDEO)).id))
    assert fake.created == 1 and fake.polls >= 3 + 3 + 2


async def test_video_that_never_finishes_times_out(fake: FakeXai, tmp_path: Path) -> None:
    fake.scenario = Scenario(Outcome.NEVER)
    async with harness_for(tmp_path, xai(fake), config=DEADLINE) as h:
        assert_failed(await h.run((await h.submit("grok-video/generate", VIDEO)).id), "timeout")


async def test_restart_resumes_polling_without_resubmitting(fake: FakeXai, tmp_path: Path) -> None:
    fake.scenario = Scenario(queued_polls=3)
    async with harness_for(tmp_path, xai(fake)) as h:
        crashed, ended = await restart_midway(h, (await h.submit("grok-video/generate", VIDEO)).id)
    assert_complete(ended)
    assert ended.upstream_id == crashed.upstream_id and ended.upstream_id in fake.tasks
    assert (fake.attempts, fake.created) == (1, 1)


async def test_cancel_stops_the_job_without_an_upstream_call(fake: FakeXai, tmp_path: Path) -> None:
    """xAI documents no cancel for video requests: the job ends canceled here, the request runs out there."""
    fake.scenario = Scenario(Outcome.NEVER)
    async with harness_for(tmp_path, xai(fake)) as h:
        ended = await cancel_midway(h, (await h.submit("grok-video/generate", VIDEO)).id)
    assert ended.status is JobStatus.CANCELED and fake.created == 1


async def test_operator_model_override_reaches_the_upstream(fake: FakeXai, tmp_path: Path) -> None:
    models = {"grok-video": "grok-imagine-video-1.5", "grok/generate": "no-such-model"}
    async with harness_for(tmp_path, xai(fake, models=models)) as h:
        assert_complete(await h.run((await h.submit("grok-video/generate", VIDEO)).id))
        assert_failed(await h.run((await h.submit("grok/generate", IMAGE)).id), "invalid_request")
    assert next(iter(fake.tasks.values())).body["model"] == "grok-imagine-video-1.5"
