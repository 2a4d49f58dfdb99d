"""OpenAI Videos (Sora 2) adapter against a fake OpenAI server: full jobs through the real runner. The API is
retired upstream; these keep the documented contract working behind `options.allow_retired`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio402.backends.base import FailureCode, UpstreamStatus
from studio402.backends.factory import build_backend
from studio402.backends.openai_videos import OpenAIVideosBackend, create_fields, fit_reference
from studio402.jobs.model import JobStatus
from tests.backends.flows import (
    SHORT_DEADLINE,
    backend_job,
    cancel_mid_job,
    decoded_image,
    image_input,
    png,
    provider,
    video_facts,
)
from tests.backends.harness import JobHarness
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.openai import API_KEY, FakeOpenAI

ROUTE = "sora-2/generate"


server, fake = fake_fixtures(FakeOpenAI)


def make_backend(fake: FakeOpenAI, **options: Any) -> OpenAIVideosBackend:
    opts: dict[str, Any] = {"allow_retired": True, **options}
    return OpenAIVideosBackend.from_settings(
        "openai-videos", provider("openai-videos", f"{fake.url}/v1", API_KEY, **opts)
    )


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[JobHarness]:
    async with harness_for(tmp_path, {"openai-videos": make_backend(fake)}) as h:
        yield h


async def test_image_to_video_stores_the_video_and_the_upstream_thumbnail(
    harness: JobHarness, fake: FakeOpenAI
) -> None:
    body = {"prompt": "waves", "size": "1280x720", "seconds": "4", "input_reference": "https://x/r.png"}
    job = await harness.submit(ROUTE, body, inputs=[image_input("input_reference", None, (96, 64))])
    ended = await harness.run(job.id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    width, height, seconds = video_facts(await harness.result_bytes(ended))
    assert (width, height) == (1280, 720) and seconds == pytest.approx(4.0)
    assert decoded_image(await harness.result_bytes(ended, "thumbnail")).format == "WEBP"
    assert fake.references == [("image/png", (1280, 720))]  # fitted to the exact size upstream demands
    assert fake.accepted[-1] == {"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "1280x720"}
    assert len(fake.hits("/content")) == 2 and fake.submissions == 1


async def test_a_broken_upstream_thumbnail_is_replaced(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "bad_thumbnail"
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    thumb = decoded_image(await harness.result_bytes(ended, "thumbnail"))
    assert (thumb.format, thumb.size) == ("WEBP", (360, 640))  # made from the 720x1280 video by the runner


async def test_sora_2_pro_takes_its_large_sizes(harness: JobHarness, fake: FakeOpenAI) -> None:
    job = await harness.submit("sora-2-pro/generate", {"prompt": "city", "size": "1024x1792", "seconds": "4"})
    ended = await harness.run(job.id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert video_facts(await harness.result_bytes(ended))[:2] == (1024, 1792)
    assert fake.accepted[-1]["model"] == "sora-2-pro"


@pytest.mark.parametrize(
    ("scenario", "code"),
    [("moderated", "moderated"), ("moderated_input", "moderated"), ("failed", "upstream_error")],
)
async def test_refusals_and_failures(harness: JobHarness, fake: FakeOpenAI, scenario: str, code: str) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, code)
    assert fake.submissions == 1


@pytest.mark.parametrize(("scenario", "code"), [("no_media", "no_media"), ("expired", "expired")])
async def test_completed_without_media(
    harness: JobHarness, fake: FakeOpenAI, scenario: str, code: str
) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, code)


@pytest.mark.parametrize("scenario", ["rate_limited_once", "server_error_once", "poll_error_once"])
async def test_transient_errors_are_retried(harness: JobHarness, fake: FakeOpenAI, scenario: str) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert fake.created == 1


async def test_persistent_server_error_fails_upstream_error(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "server_error_always"
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert fake.created == 0


async def test_never_finishing_fails_timeout(tmp_path: Path, fake: FakeOpenAI) -> None:
    async with harness_for(tmp_path, {"openai-videos": make_backend(fake)}, config=SHORT_DEADLINE) as h:
        fake.scenario = "never_done"
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "timeout")
    assert fake.created == 1


async def test_cancel_stops_polling(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.hold = True
    ended = await cancel_mid_job(harness, (await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.CANCELED
    polls = len(fake.hits("/v1/videos/", "GET"))
    await asyncio.sleep(0.1)
    assert len(fake.hits("/v1/videos/", "GET")) == polls  # nothing polls a canceled job
    assert not fake.hits("/v1/videos/", "DELETE")  # OpenAI has no cancel; DELETE would only remove it


async def test_restart_resumes_polling_without_resubmitting(
    tmp_path: Path, harness: JobHarness, fake: FakeOpenAI
) -> None:
    fake.hold = True
    job = await harness.submit(ROUTE, {"prompt": "x"})
    crashed = await harness.run_until_upstream(job.id)
    assert crashed.upstream_id in fake.videos and fake.submissions == 1
    fake.hold = False
    # a new process: a new adapter on the same database
    async with harness_for(tmp_path, {"openai-videos": make_backend(fake)}) as restarted:
        ended = await restarted.run(job.id)
    assert ended.status is JobStatus.COMPLETE, restarted.dump(ended)
    assert fake.submissions == 1 and fake.created == 1
    assert fake.hits(f"/v1/videos/{crashed.upstream_id}", "GET")


async def test_poll_maps_progress_and_the_poll_hint(fake: FakeOpenAI) -> None:
    backend = make_backend(fake)
    job = backend_job(ROUTE, {"prompt": "x"})
    fake.steps = 4
    submitted = await backend.submit(job)
    assert submitted.upstream_id is not None
    poll = await backend.poll(job, submitted.upstream_id)
    await backend.aclose()
    assert (poll.status, poll.progress, poll.poll_after) == (UpstreamStatus.RUNNING, 25, 0.005)


async def test_unknown_video_is_not_found(fake: FakeOpenAI) -> None:
    backend = make_backend(fake)
    failure = await failure_of(backend, backend.poll(backend_job(ROUTE, {"prompt": "x"}), "video_missing"))
    assert failure.failure is FailureCode.NOT_FOUND and failure.accepted


async def test_retired_submits_nothing(fake: FakeOpenAI) -> None:
    backend = OpenAIVideosBackend("v", provider("openai-videos", f"{fake.url}/v1", API_KEY))
    failure = await failure_of(backend, backend.submit(backend_job(ROUTE, {"prompt": "x"})))
    assert failure.failure is FailureCode.UNAVAILABLE and not failure.accepted
    assert fake.submissions == 0


def test_retired_unless_allowed() -> None:
    retired = OpenAIVideosBackend("v", provider("openai-videos", "http://127.0.0.1:9", "k"))
    assert not retired.supports(ROUTE)
    assert any("allow_retired" in m for m in retired.missing_settings())
    allowed = OpenAIVideosBackend(
        "v", provider("openai-videos", "http://127.0.0.1:9", "k", allow_retired=True)
    )
    assert allowed.supports(ROUTE) and allowed.supports("sora-2-pro/generate")
    assert allowed.missing_settings() == []


def test_create_fields_and_reference_fitting() -> None:
    job = backend_job("sora-2-pro/generate", {"prompt": "p", "duration_seconds": 8, "size": "1792x1024"})
    assert create_fields(job, "sora-2-pro") == {
        "model": "sora-2-pro",
        "prompt": "p",
        "seconds": "8",
        "size": "1792x1024",
    }
    source = png(96, 64)  # wide red source into a tall frame
    cropped = Image.open(io.BytesIO(fit_reference(source, "720x1280", crop=True))).convert("RGB")
    padded = Image.open(io.BytesIO(fit_reference(source, "720x1280", crop=False))).convert("RGB")
    assert cropped.size == padded.size == (720, 1280)
    assert cropped.getpixel((360, 10)) == (200, 30, 30)  # filled by the crop
    assert padded.getpixel((360, 10)) == (0, 0, 0)  # letterboxed
    assert padded.getpixel((360, 640)) == (200, 30, 30)


def test_built_from_the_factory_table() -> None:
    backend = build_backend("mine", provider("openai-videos", "http://127.0.0.1:9", "k"))
    assert isinstance(backend, OpenAIVideosBackend) and backend.name == "mine"
