"""Helpers of the adapter tests against fake upstreams: the fake's fixtures, settings, real media inputs,
decoding results, a runner whose sleeps are recorded (to check Retry-After honouring without waiting), and a
mid-job cancel."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from PIL import Image

from studio402.backends.base import Backend, BackendFailure, MediaInput
from studio402.catalog import CATALOG
from studio402.catalog.fields import MediaKind
from studio402.config import ProviderSettings
from studio402.jobs.model import Job, JobStatus
from studio402.jobs.runner import RunnerConfig
from studio402.media.avprobe import open_container
from studio402.payments.ledger import new_id
from tests.backends.harness import FAST, JobHarness
from tests.fakes.fake_server import API_KEY, FakeUpstream, Outcome, image_bytes, mp4_bytes

DEADLINE = replace(FAST, deadline_seconds=0.3)  # "never finishes" ends fast
# How a task ends upstream -> the job's error code.
ENDINGS = [
    (Outcome.MODERATED, "moderated"),
    (Outcome.NO_MEDIA, "no_media"),
    (Outcome.EXPIRED, "expired"),
    (Outcome.FAILED, "upstream_error"),
]


class Fake(Protocol):
    def running(self) -> AbstractAsyncContextManager[object]: ...

    def reset(self) -> None: ...


FakeT = TypeVar("FakeT", bound=Fake)


def fake_fixtures(make: Callable[[], FakeT], reset: Callable[[FakeT], None] | None = None) -> tuple[Any, Any]:
    """A test module's `server` (one running fake for the module) and `fake` (that server, reset before each
    test; by `reset` when given) fixtures: `server, fake = fake_fixtures(FakeXai)`."""

    @pytest.fixture(scope="module")
    async def server() -> AsyncIterator[FakeT]:
        shared = make()
        async with shared.running():
            yield shared

    @pytest.fixture
    def fake(server: FakeT) -> FakeT:
        if reset is None:
            server.reset()
        else:
            reset(server)
        return server

    return server, fake


async def failure_of(backend: Backend, call: Awaitable[object]) -> BackendFailure:
    """The failure a call on `backend` raises; the backend is closed either way."""
    try:
        with pytest.raises(BackendFailure) as info:
            await call
    finally:
        await backend.aclose()
    return info.value


def provider(kind: str, base_url: str, **changes: Any) -> ProviderSettings:
    return ProviderSettings.model_validate(
        {"type": kind, "api_key": API_KEY, "base_url": base_url, **changes}
    )


def png_input(loc: tuple[str | int, ...], size: tuple[int, int] = (64, 48)) -> MediaInput:
    data = image_bytes(*size, fmt="PNG")
    return MediaInput(
        loc, MediaKind.IMAGE, "image/png", data, f"https://gw.example/blobs/{loc[0]}.png", *size
    )


def mp4_input(loc: tuple[str | int, ...], size: tuple[int, int] = (64, 48)) -> MediaInput:
    return MediaInput(
        loc,
        MediaKind.VIDEO,
        "video/mp4",
        mp4_bytes(*size),
        f"https://gw.example/blobs/{loc[0]}.mp4",
        *size,
        duration_s=1.0,
    )


def audio_input(loc: tuple[str | int, ...]) -> MediaInput:
    from tests.media.samples import wav_bytes

    return MediaInput(
        loc,
        MediaKind.AUDIO,
        "audio/wav",
        wav_bytes(0.5),
        f"https://gw.example/blobs/{loc[0]}.wav",
        duration_s=0.5,
    )


def sent(fake: FakeUpstream) -> dict[str, Any]:
    """The body of the last task the fake accepted."""
    body: dict[str, Any] = list(fake.tasks.values())[-1].body
    return body


def video_size(data: bytes) -> tuple[int, int]:
    with open_container(data) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


def assert_failed(job: Job, code: str) -> None:
    assert job.status is JobStatus.FAILED, JobHarness.dump(job)
    assert job.error_code == code, JobHarness.dump(job)


def assert_complete(job: Job) -> None:
    assert job.status is JobStatus.COMPLETE, JobHarness.dump(job)


async def run_recording_sleeps(harness: JobHarness, job_id: str) -> tuple[Job, list[float]]:
    """Run a fresh job with a runner whose sleeps are recorded and shortened (the heartbeat's are kept)."""
    sleeps: list[float] = []
    heartbeat = harness.config.lease_seconds / 3

    async def sleep(seconds: float) -> None:
        if seconds != heartbeat:
            sleeps.append(seconds)
        await asyncio.sleep(seconds if seconds == heartbeat else min(seconds, 0.01))

    owner = new_id("worker")
    job = await harness.store.claim(owner, harness.config.lease_seconds, time.time())
    assert job is not None and job.id == job_id
    await asyncio.wait_for(harness.runner(owner, sleep=sleep).run(job), 30)
    ended = await harness.store.get(job_id)
    assert ended is not None
    return ended, sleeps


async def cancel_midway(harness: JobHarness, job_id: str) -> Job:
    """The owner cancels while the upstream works: the worker stops the task and cancels upstream (as
    WorkerPool does on a cancel event)."""
    await harness.run_until_upstream(job_id)
    canceled = await harness.store.cancel(job_id, time.time())
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    await harness.runner(new_id("worker")).cancelled(job_id)
    ended = await harness.store.get(job_id)
    assert ended is not None
    return ended


async def restart_midway(harness: JobHarness, job_id: str) -> tuple[Job, Job]:
    """Crash right after the upstream id was persisted, then run again as a new worker."""
    crashed = await harness.run_until_upstream(job_id)
    ended = await harness.run(job_id)
    return crashed, ended


def geometry_of(route_key: str, body: Mapping[str, Any]) -> tuple[int, int]:
    from studio402.backends.dimensions import geometry

    route = CATALOG.get(*route_key.split("/"))
    geo = geometry(route, CATALOG.validate(route, dict(body)).canonical)
    return geo.width, geo.height


@asynccontextmanager
async def harness_for(
    tmp: Path, backends: Mapping[str, Backend], *, config: RunnerConfig = FAST, url: str | None = None
) -> AsyncIterator[JobHarness]:
    harness = await JobHarness.open(tmp, backends, config=config, url=url)
    try:
        yield harness
    finally:
        await harness.close()
        for backend in backends.values():
            await backend.aclose()
