"""Helpers for driving upstream adapters through the real runner (tests/backends/test_<provider>.py):
settings pointed at a fake, real PNG media inputs, decoding results, and the cancel flow."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import av
from PIL import Image
from pydantic import SecretStr

from studio402.backends.base import BackendJob, MediaInput
from studio402.catalog import CATALOG
from studio402.catalog.fields import MediaKind
from studio402.config import ProviderSettings
from studio402.jobs.model import Job
from studio402.jobs.runner import SUBMITTING, RunnerConfig
from studio402.payments.ledger import new_id
from tests.backends.harness import FAST, JobHarness
from tests.backends.upstream_support import DEADLINE

# The runner gives up quickly: a fake that never finishes ends the job `timeout` in a fraction of a second.
SHORT_DEADLINE = DEADLINE


def provider(
    kind: str,
    base_url: str,
    key: str,
    *,
    timeout: float = 5.0,
    models: Mapping[str, str] | None = None,
    **options: Any,
) -> ProviderSettings:
    return ProviderSettings(
        type=kind,
        api_key=SecretStr(key),
        base_url=base_url,
        timeout_seconds=timeout,
        models=dict(models or {}),
        options=options,
    )


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def image_input(
    field: str,
    index: int | None = None,
    size: tuple[int, int] = (96, 64),
    color: tuple[int, int, int] = (200, 30, 30),
) -> MediaInput:
    loc: tuple[str | int, ...] = (field,) if index is None else (field, index)
    return MediaInput(
        loc,
        MediaKind.IMAGE,
        "image/png",
        png(*size, color),
        f"http://127.0.0.1/blobs/{field}.png",
        size[0],
        size[1],
    )


def backend_job(
    route_key: str, body: Mapping[str, Any], inputs: tuple[MediaInput, ...] = (), seed: int = 7
) -> BackendJob:
    """A BackendJob with the canonical params the catalog makes of `body` (for mapping unit tests)."""
    model, operation = route_key.split("/")
    request = CATALOG.validate(CATALOG.get(model, operation), dict(body))
    return BackendJob(new_id("job"), model, operation, dict(request.canonical), inputs, seed=seed)


def decoded_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def video_facts(data: bytes) -> tuple[int, int, float]:
    """Width, height and duration of an MP4, decoding every frame."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        assert frames, "no decodable frame"
        rate = float(stream.average_rate or 1)
        return stream.codec_context.width, stream.codec_context.height, len(frames) / rate


async def cancel_mid_job(harness: JobHarness, job_id: str, *, timeout: float = 10.0) -> Job:
    """What the worker does when the payer cancels: the job row is canceled, the running task is stopped,
    and the runner cancels upstream."""
    owner = new_id("worker")
    job = await harness.store.claim(owner, harness.config.lease_seconds, time.time())
    assert job is not None and job.id == job_id
    runner = harness.runner(owner)
    task = asyncio.create_task(runner.run(job))
    deadline = time.monotonic() + timeout
    while not (current := await harness.store.get(job_id)) or current.upstream_id in (None, SUBMITTING):
        assert time.monotonic() < deadline and not task.done(), "no upstream id persisted"
        await asyncio.sleep(0.005)
    await harness.store.cancel(job_id, time.time())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await runner.cancelled(job_id)
    ended = await harness.store.get(job_id)
    assert ended is not None
    return ended


def runner_config(**changes: Any) -> RunnerConfig:
    return replace(FAST, **changes)
