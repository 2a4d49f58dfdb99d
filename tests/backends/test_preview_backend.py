"""The preview backend through the real runner: real files with the requested geometry and format."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from PIL import Image

from studio402.backends.base import MediaInput
from studio402.backends.preview.backend import PreviewBackend
from studio402.catalog import CATALOG
from studio402.catalog.fields import MediaKind
from studio402.jobs.model import JobStatus
from tests.backends.harness import JobHarness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[JobHarness]:
    h = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    yield h
    await h.close()


@pytest.mark.parametrize(
    ("route", "body", "size", "fmt"),
    [
        (
            "gpt-image-1.5/generate",
            {"prompt": "a fox", "size": "1536x1024", "output_format": "webp"},
            (1536, 1024),
            "WEBP",
        ),
        (
            "nano-banana/generate",
            {"prompt": "a fox", "aspectRatio": "16:9", "imageSize": "512"},
            (688, 384),
            "PNG",
        ),
        (
            "flux-2-pro/generate",
            {"prompt": "a fox", "aspect_ratio": "1:1", "resolution": "0.5 MP", "output_format": "jpg"},
            (704, 704),
            "JPEG",
        ),
    ],
)
async def test_images_have_the_requested_size_and_format(
    harness: JobHarness, route: str, body: dict[str, str], size: tuple[int, int], fmt: str
) -> None:
    ended = await harness.run((await harness.submit(route, body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert ended.backend == "preview"
    img = Image.open(io.BytesIO(await harness.result_bytes(ended)))
    assert img.size == size and img.format == fmt


async def test_same_request_same_pixels(harness: JobHarness) -> None:
    body = {"prompt": "lighthouse at dusk", "imageSize": "512"}
    a = await harness.run((await harness.submit("nano-banana/generate", body)).id)
    b = await harness.run((await harness.submit("nano-banana/generate", body)).id)
    c = await harness.run((await harness.submit("nano-banana/generate", {**body, "prompt": "a forest"})).id)
    assert await harness.result_bytes(a) == await harness.result_bytes(b)
    assert await harness.result_bytes(a) != await harness.result_bytes(c)


async def test_edit_transforms_the_given_image(harness: JobHarness) -> None:
    source = Image.new("RGB", (400, 300), (200, 30, 30))
    buf = io.BytesIO()
    source.save(buf, "PNG")
    media = MediaInput(
        ("images", 0), MediaKind.IMAGE, "image/png", buf.getvalue(), "http://x/blobs/a.png", 400, 300
    )
    job = await harness.submit(
        "nano-banana/edit",
        {"prompt": "make it blue", "imageSize": "512", "images": ["https://x/a.png"]},
        inputs=[media],
    )
    ended = await harness.run(job.id)
    out = Image.open(io.BytesIO(await harness.result_bytes(ended))).convert("RGB")
    assert out.size == (512, 512)
    assert out.getpixel((256, 256)) != (200, 30, 30)


async def test_video_has_the_requested_duration_size_and_codec(harness: JobHarness) -> None:
    job = await harness.submit(
        "veo-3.1-fast/generate", {"prompt": "waves", "durationSeconds": "4", "aspectRatio": "9:16"}
    )
    ended = await harness.run(job.id, timeout=60)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert ended.result is not None and ended.result["video"]["width"] == 720
    with av.open(io.BytesIO(await harness.result_bytes(ended))) as container:
        assert isinstance(container, av.container.InputContainer)
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (720, 1280)
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 96
    thumb = Image.open(io.BytesIO(await harness.result_bytes(ended, "thumbnail")))
    assert thumb.format == "WEBP"
