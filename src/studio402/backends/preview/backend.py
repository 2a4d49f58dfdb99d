"""The `preview` backend: the embedded default for every model. Real files, honest labels, no network.

It honours each request's geometry, duration and format exactly and transforms the given images for edit
and image-to-video requests; it never claims to be AI generation (see render.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from PIL import Image

from studio402.backends.base import Ask, BackendJob, MediaInput, Output, Poll, Submitted, UpstreamStatus
from studio402.backends.dimensions import geometry
from studio402.backends.preview.render import render_image, render_video
from studio402.catalog import Catalog, Kind
from studio402.catalog.fields import MediaKind
from studio402.media.image import load_image

_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
# Media fields that hold the first / last frame of an image-to-video request, per route family.
_FIRST = ("image", "input_reference", "urls")
_LAST = ("lastFrame", "last_image")


class PreviewBackend:
    name = "preview"

    def __init__(self, catalog: Catalog, *, concurrency: int = 1) -> None:
        self._catalog = catalog
        self._cpu = asyncio.Semaphore(
            concurrency
        )  # renders are CPU-bound: don't starve the event loop's core

    def refusal(self, ask: Ask) -> str | None:
        return None  # renders every catalog request

    def supports(self, route_key: str) -> bool:
        return any(r.key == route_key for r in self._catalog)

    async def submit(self, job: BackendJob) -> Submitted:
        route = self._catalog.get(job.model, job.operation)
        async with self._cpu:
            if route.kind is Kind.VIDEO:
                outputs = await asyncio.to_thread(self._video, job, route)
            else:
                outputs = await asyncio.to_thread(self._image, job, route)
        return Submitted(upstream_id=None, result=Poll(UpstreamStatus.SUCCEEDED, 100, outputs))

    def _image(self, job: BackendJob, route: Any) -> tuple[Output, ...]:
        geo = geometry(route, job.params)
        fmt = _FORMATS[str(job.params.get("output_format", "png"))]
        sources = [load_image(i.data) for i in job.inputs if i.kind is MediaKind.IMAGE]
        data = render_image(
            prompt=str(job.params.get("prompt") or ""),
            seed=job.seed,
            width=geo.width,
            height=geo.height,
            fmt=fmt,  # type: ignore[arg-type]
            sources=sources,
            transparent=job.params.get("background") == "transparent",
        )
        return (Output(data, f"image/{fmt}"),)

    def _video(self, job: BackendJob, route: Any) -> tuple[Output, ...]:
        geo = geometry(route, job.params)
        first, last = _keyframes(job.inputs)
        rendered = render_video(
            prompt=str(job.params.get("prompt") or ""),
            seed=job.seed,
            width=geo.width,
            height=geo.height,
            duration_s=geo.duration_s,
            fps=geo.fps,
            first_frame=first,
            last_frame=last,
        )
        return Output(rendered.mp4, "video/mp4"), Output(
            rendered.thumbnail_webp, "image/webp", role="thumbnail"
        )

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        raise AssertionError("the preview backend answers synchronously")

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _keyframes(inputs: Sequence[MediaInput]) -> tuple[Image.Image | None, Image.Image | None]:
    images = [i for i in inputs if i.kind is MediaKind.IMAGE]
    first = next((i for i in images if i.loc[0] in _FIRST and i.loc[-1] in (0, i.loc[0])), None)
    last = next((i for i in images if i.loc[0] in _LAST or (i.loc[0] == "urls" and i.loc[-1] == 1)), None)
    if first is None and images:  # reference images only (Veo reference mode): use the first as the look
        first = images[0]
    return (load_image(first.data) if first else None, load_image(last.data) if last else None)
