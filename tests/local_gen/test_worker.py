"""The diffusers backend without a server: progress step by step, cancellation between steps, a failed job
leaves its worker serving, a restarted process knows no old job."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio402.backends.base import BackendFailure, BackendJob, FailureCode, MediaInput, Poll, UpstreamStatus
from studio402.backends.local_gen.backend import DiffusersBackend
from studio402.backends.local_gen.options import LocalOptions
from studio402.catalog.fields import MediaKind

T2V = {"prompt": "waves", "duration": "5", "size": "1280*720"}
I2V = {"prompt": "a dog", "duration": "3", "resolution": "480p"}


def backend(folder: Path, pipeline: str, **options: Any) -> DiffusersBackend:
    raw = {"model_path": str(folder), "pipeline": pipeline, "max_pixels": 64 * 64, "fps": 4, **options}
    return DiffusersBackend("local", LocalOptions.parse("local", raw))


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), color).save(out, "PNG")
    return out.getvalue()


async def until(b: DiffusersBackend, job: BackendJob, upstream: str, done: Any, limit: float = 90) -> Poll:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        poll = await b.poll(job, upstream)
        if done(poll):
            return poll
        assert asyncio.get_running_loop().time() < deadline, poll
        await asyncio.sleep(0.05)


async def test_progress_then_cancel_between_steps(tiny_models: dict[str, Path]) -> None:
    b = backend(tiny_models["wan_t2v"], "text-to-video", steps=5_000)  # minutes, unless canceled
    try:
        job = BackendJob("job-cancel", "wan-2.6", "t2v", T2V)
        upstream = (await b.submit(job)).upstream_id
        assert upstream is not None
        running = await until(b, job, upstream, lambda p: (p.progress or 0) > 0)
        assert running.status is UpstreamStatus.RUNNING and 0 < (running.progress or 0) < 100
        await b.cancel(job, upstream)
        # stopped at the next step, then dropped (the runner polls no canceled job): not minutes later
        with pytest.raises(BackendFailure) as failure:
            await until(b, job, upstream, lambda p: False, limit=20)
        assert failure.value.failure is FailureCode.NOT_FOUND
        # the same warm worker serves the next job
        quick = BackendJob("job-next", "wan-2.6", "t2v", T2V)
        b.options = LocalOptions.parse("local", {**_raw(b), "steps": 2})
        up2 = (await b.submit(quick)).upstream_id
        assert up2 is not None
        done = await until(b, quick, up2, lambda p: p.status is UpstreamStatus.SUCCEEDED)
        assert [o.mime for o in done.outputs] == ["video/mp4", "image/webp"]
    finally:
        await b.aclose()


def _raw(b: DiffusersBackend) -> dict[str, Any]:
    o = b.options
    return {
        "model_path": o.model_path,
        "pipeline": o.pipeline.value,
        "max_pixels": o.max_pixels,
        "fps": o.fps,
    }


async def test_failed_job_keeps_the_worker_and_unknown_ids_are_not_found(
    tiny_models: dict[str, Path],
) -> None:
    b = backend(tiny_models["ltx_i2v"], "image-to-video", steps=2, fps=8)
    try:
        broken = MediaInput(("image",), MediaKind.IMAGE, "image/png", b"not an image", "")
        job = BackendJob("job-broken", "grok-video", "generate", I2V, (broken,))
        upstream = (await b.submit(job)).upstream_id
        assert upstream is not None
        with pytest.raises(BackendFailure) as failure:
            await until(b, job, upstream, lambda p: False)
        assert failure.value.failure is FailureCode.UPSTREAM_ERROR and not failure.value.retryable
        good = MediaInput(("image",), MediaKind.IMAGE, "image/png", png("green"), "")
        ok = BackendJob("job-ok", "grok-video", "generate", I2V, (good,))
        up2 = (await b.submit(ok)).upstream_id
        assert up2 is not None
        done = await until(b, ok, up2, lambda p: p.status is UpstreamStatus.SUCCEEDED)
        assert done.progress == 100 and done.outputs[0].mime == "video/mp4"
        with pytest.raises(BackendFailure) as missing:  # a job this process never ran (a restart)
            await b.poll(BackendJob("job-gone", "grok-video", "generate", I2V), "local:job-gone")
        assert missing.value.failure is FailureCode.NOT_FOUND and missing.value.accepted
    finally:
        await b.aclose()


async def test_a_model_that_does_not_load_is_refused_before_acceptance(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        '{"_class_name": "WanPipeline", "transformer": ["diffusers", "X"]}'
    )
    b = backend(folder, "text-to-video", load_timeout_seconds=120)
    try:
        assert b.missing_settings() == []  # it looks installed ...
        with pytest.raises(BackendFailure) as failure:  # ... but cannot load: the chain may fall back
            await b.submit(BackendJob("job-x", "wan-2.6", "t2v", T2V))
        assert failure.value.failure is FailureCode.UNAVAILABLE and not failure.value.accepted
    finally:
        await b.aclose()


async def test_a_hub_id_loads_from_a_pre_seeded_cache(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """`model_path = "org/name"`: read from the HF cache layout (refs/main -> snapshots/<rev>), offline."""
    repo = tmp_path / "hub" / "models--studio402--tiny-sd"
    shutil.copytree(tiny_models["sd"], repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    raw = {"model_path": "studio402/tiny-sd", "pipeline": "text-to-image", "cache_dir": str(tmp_path / "hub")}
    b = DiffusersBackend("hub", LocalOptions.parse("hub", {**raw, "steps": 2, "max_pixels": 64 * 64}))
    try:
        assert b.missing_settings() == []
        job = BackendJob("job-hub", "grok", "generate", {"prompt": "a cat", "aspect_ratio": "1:1"})
        upstream = (await b.submit(job)).upstream_id
        assert upstream is not None
        done = await until(b, job, upstream, lambda p: p.status is UpstreamStatus.SUCCEEDED)
        assert Image.open(io.BytesIO(done.outputs[0].data)).size == (1024, 1024)
    finally:
        await b.aclose()
