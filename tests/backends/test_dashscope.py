"""The Wan 2.6 adapter through the real runner against a fake DashScope task API."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from studio402.backends.base import Ask
from studio402.backends.dashscope import WanBackend
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.jobs.model import JobStatus
from studio402.jobs.runner import job_seed
from tests.backends.upstream_support import (
    DEADLINE,
    assert_complete,
    assert_failed,
    audio_input,
    cancel_midway,
    fake_fixtures,
    geometry_of,
    harness_for,
    png_input,
    provider,
    restart_midway,
    run_recording_sleeps,
    sent,
    video_size,
)
from tests.fakes.dashscope import SYNTHESIS, FakeDashScope
from tests.fakes.fake_server import API_KEY, Outcome, Scenario, decode_data_uri
from tests.fakes.schema_check import issues

T2V = {
    "prompt": "a lantern festival",
    "size": "720*1280",
    "duration": 10,
    "negativePrompt": "blur",
    "enablePromptExpansion": False,
    "multiShots": True,
}
I2V = {"prompt": "the kite rises", "image": "https://x.example/kite.png", "resolution": "1080p"}


server, fake = fake_fixtures(FakeDashScope)


def wan(fake: FakeDashScope, **changes: Any) -> dict[str, WanBackend]:
    return {"dashscope": WanBackend("dashscope", provider("dashscope", f"{fake.base_url}/api/v1", **changes))}


async def test_t2v_maps_every_option_and_stores_the_requested_size(
    fake: FakeDashScope, tmp_path: Path
) -> None:
    async with harness_for(tmp_path, wan(fake)) as h:
        job = await h.submit("wan-2.6/t2v", T2V)
        ended = await h.run(job.id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == geometry_of("wan-2.6/t2v", T2V) == (720, 1280)
    assert sent(fake) == {
        "model": "wan2.6-t2v",
        "input": {"prompt": "a lantern festival", "negative_prompt": "blur"},
        "parameters": {
            "size": "720*1280",
            "duration": 10,
            "prompt_extend": False,
            "shot_type": "multi",
            "watermark": False,
            "seed": job_seed(job) % 2_147_483_648,
        },
    }
    assert fake.headers_seen[-1]["x-dashscope-async"] == "enable"


async def test_i2v_sends_the_first_frame_inline_and_the_soundtrack_by_url(
    fake: FakeDashScope, tmp_path: Path
) -> None:
    first, audio = png_input(("image",), (640, 360)), audio_input(("audioUrl",))
    body = {**I2V, "audioUrl": "https://x.example/song.wav", "seed": 99}
    async with harness_for(tmp_path, wan(fake)) as h:
        ended = await h.run((await h.submit("wan-2.6/i2v", body, inputs=[first, audio])).id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == geometry_of("wan-2.6/i2v", body) == (1920, 1080)
    assert decode_data_uri(sent(fake)["input"]["img_url"]) == ("image/png", first.data)
    assert sent(fake)["input"]["audio_url"] == audio.url
    assert sent(fake)["parameters"]["resolution"] == "1080P" and sent(fake)["parameters"]["seed"] == 99


async def test_inline_images_can_be_turned_off(fake: FakeDashScope, tmp_path: Path) -> None:
    first = png_input(("image",), (640, 360))
    async with harness_for(tmp_path, wan(fake, options={"inline_images": False})) as h:
        assert_complete(await h.run((await h.submit("wan-2.6/i2v", I2V, inputs=[first])).id))
    assert sent(fake)["input"]["img_url"] == first.url


async def test_the_fake_refuses_synchronous_calls(fake: FakeDashScope) -> None:
    body = {"model": "wan2.6-t2v", "input": {"prompt": "x"}, "parameters": {}}
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        resp = await client.post(SYNTHESIS, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 403 and resp.json()["code"] == "AccessDenied"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.MODERATED, "moderated"),
        (Outcome.NO_MEDIA, "no_media"),
        (Outcome.FAILED, "upstream_error"),
    ],
)
async def test_task_endings(fake: FakeDashScope, tmp_path: Path, outcome: Outcome, code: str) -> None:
    fake.scenario = Scenario(outcome)
    async with harness_for(tmp_path, wan(fake)) as h:
        assert_failed(await h.run((await h.submit("wan-2.6/t2v", T2V)).id), code)


async def test_input_inspection_failure_is_moderation_at_submission(
    fake: FakeDashScope, tmp_path: Path
) -> None:
    fake.scenario = Scenario(Outcome.MODERATED)
    async with harness_for(tmp_path, wan(fake)) as h:
        assert_failed(
            await h.run((await h.submit("wan-2.6/t2v", {**T2V, "prompt": "forbidden"})).id), "moderated"
        )
    assert (fake.attempts, fake.created) == (1, 0)


async def test_unknown_task_id_is_terminal_not_found(fake: FakeDashScope, tmp_path: Path) -> None:
    """The task vanished (expired, or the key moved region) while we were down: UNKNOWN with HTTP 200."""
    fake.scenario = Scenario(Outcome.NEVER)
    async with harness_for(tmp_path, wan(fake)) as h:
        job = await h.submit("wan-2.6/t2v", T2V)
        crashed = await h.run_until_upstream(job.id)
        fake.tasks.pop(str(crashed.upstream_id))
        assert_failed(await h.run(job.id), "upstream_not_found")
    assert fake.attempts == 1


async def test_throttling_then_success_honours_retry_after(fake: FakeDashScope, tmp_path: Path) -> None:
    fake.scenario = Scenario(submit_errors=[429], poll_errors=[429], retry_after="4")
    async with harness_for(tmp_path, wan(fake)) as h:
        ended, sleeps = await run_recording_sleeps(h, (await h.submit("wan-2.6/t2v", T2V)).id)
    assert_complete(ended)
    assert sleeps.count(4.0) == 2 and (fake.attempts, fake.created) == (2, 1)


async def test_server_errors_retried_then_persistent_failure(fake: FakeDashScope, tmp_path: Path) -> None:
    async with harness_for(tmp_path, wan(fake)) as h:
        fake.scenario = Scenario(submit_errors=[500, 503])
        assert_complete(await h.run((await h.submit("wan-2.6/t2v", T2V)).id))
        fake.scenario = Scenario(submit_errors=[500] * 10)
        assert_failed(
            await h.run((await h.submit("wan-2.6/t2v", {**T2V, "duration": 5})).id), "upstream_error"
        )
    assert fake.created == 1


async def test_never_finishing_task_times_out_and_is_canceled(fake: FakeDashScope, tmp_path: Path) -> None:
    fake.scenario = Scenario(Outcome.NEVER, queued_polls=10_000)
    async with harness_for(tmp_path, wan(fake), config=DEADLINE) as h:
        assert_failed(await h.run((await h.submit("wan-2.6/t2v", T2V)).id), "timeout")
    assert fake.cancels == 1 and next(iter(fake.tasks.values())).canceled


async def test_restart_resumes_the_persisted_task(fake: FakeDashScope, tmp_path: Path) -> None:
    fake.scenario = Scenario(queued_polls=3)
    async with harness_for(tmp_path, wan(fake)) as h:
        crashed, ended = await restart_midway(h, (await h.submit("wan-2.6/t2v", T2V)).id)
    assert_complete(ended)
    assert crashed.upstream_id == ended.upstream_id
    assert (fake.attempts, fake.created) == (1, 1)


@pytest.mark.parametrize(("queued", "canceled_upstream"), [(10_000, True), (0, False)])
async def test_cancel_reaches_pending_tasks_only(
    fake: FakeDashScope, tmp_path: Path, queued: int, canceled_upstream: bool
) -> None:
    fake.scenario = Scenario(Outcome.NEVER, queued_polls=queued)
    async with harness_for(tmp_path, wan(fake)) as h:
        ended = await cancel_midway(h, (await h.submit("wan-2.6/t2v", T2V)).id)
    assert ended.status is JobStatus.CANCELED
    assert fake.cancels == 1 and fake.tasks[str(ended.upstream_id)].canceled is canceled_upstream


async def test_wrong_key_is_an_auth_failure(fake: FakeDashScope, tmp_path: Path) -> None:
    async with harness_for(tmp_path, wan(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("wan-2.6/t2v", T2V)).id), "upstream_auth")
    assert fake.attempts == 0


def frame(width: int, height: int, size: int = 50_000, mime: str = "image/png") -> InputFacts:
    return InputFacts(("image",), MediaKind.IMAGE, mime, size, width, height)


def refusal(route: str, params: dict[str, Any], *inputs: InputFacts, **options: Any) -> str | None:
    backend = WanBackend("dashscope", provider("dashscope", "http://127.0.0.1:9", options=options))
    model, operation = route.split("/")
    return backend.refusal(Ask(model, operation, params, inputs))


@pytest.mark.parametrize(
    ("route", "params", "refused"),
    [
        ("wan-2.6/t2v", {"prompt": "p" * 1500}, False),
        ("wan-2.6/t2v", {"prompt": "p" * 1501}, True),  # Wan 2.6 cuts prompts after 1,500 characters
        ("wan-2.6/i2v", {"prompt": "p" * 1501}, True),
        ("wan-2.6/t2v", {"prompt": "p", "negativePrompt": "n" * 500}, False),
        ("wan-2.6/t2v", {"prompt": "p", "negativePrompt": "n" * 501}, True),  # cut after 500
    ],
)
def test_prompts_wan_would_cut_are_refused_before_payment(
    route: str, params: dict[str, Any], refused: bool
) -> None:
    reason = refusal(route, params)
    assert (reason is not None) is refused, reason
    assert reason is None or "characters" in reason


async def test_a_prompt_wan_would_cut_is_never_submitted(fake: FakeDashScope, tmp_path: Path) -> None:
    async with harness_for(tmp_path, wan(fake)) as h:
        ended = await h.run((await h.submit("wan-2.6/t2v", {**T2V, "prompt": "p" * 1600})).id)
    assert_failed(ended, "backend_unavailable")
    assert fake.attempts == 0 and not fake.truncated


@pytest.mark.parametrize(
    ("facts", "inline", "refused"),
    [
        (frame(640, 360), True, False),
        (frame(200, 200), True, False),  # enlarged to 360 x 360 before sending
        (frame(200, 200), False, True),  # sent by URL: it would reach Wan as it is
        (frame(2400, 1350), True, False),  # reduced to 2000 x 1125
        (frame(2400, 1350), False, True),
        (frame(1000, 1000, size=12_000_000), False, True),  # Wan takes at most 10 MB
        (frame(1000, 1000, mime="image/gif"), False, True),
        (frame(4000, 300), True, True),  # no scale puts both sides within 360-2000
    ],
)
def test_first_frames_wan_cannot_take_are_refused_before_payment(
    facts: InputFacts, inline: bool, refused: bool
) -> None:
    reason = refusal("wan-2.6/i2v", {"prompt": "p", "image": "https://x/a.png"}, facts, inline_images=inline)
    assert (reason is not None) is refused, reason


@pytest.mark.parametrize(("size", "sent_size"), [((160, 90), (640, 360)), ((2400, 1350), (2000, 1125))])
async def test_a_first_frame_out_of_range_is_resized_for_wan(
    fake: FakeDashScope, tmp_path: Path, size: tuple[int, int], sent_size: tuple[int, int]
) -> None:
    first = png_input(("image",), size)
    async with harness_for(tmp_path, wan(fake)) as h:
        assert_complete(await h.run((await h.submit("wan-2.6/i2v", I2V, inputs=[first])).id))
    decoded = decode_data_uri(sent(fake)["input"]["img_url"])
    assert decoded is not None
    with Image.open(io.BytesIO(decoded[1])) as img:
        assert img.size == sent_size


def test_the_fake_checks_the_schema_and_frame_limits() -> None:
    assert issues("dashscope_wan26.json", {"model": "wan2.6-t2v", "input": {"prompt": "x"}}) == []
    body = {"model": "wan2.6-i2v", "input": {"prompt": "x", "img": "y"}, "parameters": {"fps": 24}}
    assert {i.keyword for i in issues("dashscope_wan26.json", body)} == {"additionalProperties"}
