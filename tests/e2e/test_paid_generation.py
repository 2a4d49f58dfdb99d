"""The whole loop with real payments on the devnet: the official x402 client pays, then polls with
SIGN-IN-WITH-X (answering the SIWX 402 by itself) until `complete`, and the downloaded file is real media."""

from __future__ import annotations

import io

import av
from PIL import Image

from tests.devnet_fixture import new_payer
from tests.paid_support import PaidServer, pay_and_wait


async def download(url: str) -> bytes:
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(url)
    assert response.status_code == 200
    return response.content


async def test_image_route_end_to_end(paid_server: PaidServer) -> None:
    payer = await new_payer(paid_server.devnet, 1_000_000)
    job = await pay_and_wait(
        paid_server,
        payer.key,
        "/api/generate/gpt-image-1.5/generate",
        {"prompt": "a paper boat on a pond", "size": "1024x1536", "quality": "low", "output_format": "jpeg"},
        timeout=90,
    )
    assert job["status"] == "complete", job
    assert job["backend"] == "preview" and job["refund"] is None
    image = Image.open(io.BytesIO(await download(job["result"]["imageUrl"])))
    assert image.format == "JPEG" and image.size == (1024, 1536)


async def test_video_route_end_to_end(paid_server: PaidServer) -> None:
    payer = await new_payer(paid_server.devnet, 5_000_000)
    job = await pay_and_wait(
        paid_server,
        payer.key,
        "/api/generate/veo-3.1-fast/generate",
        {"prompt": "waves at night", "durationSeconds": "4", "resolution": "720p"},
        timeout=90,
    )
    assert job["status"] == "complete", job
    data = await download(job["result"]["videoUrl"])
    with av.open(io.BytesIO(data)) as container:
        assert isinstance(container, av.container.InputContainer)
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(video=0)]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert len(times) == 96 and all(t is not None for t in times)
    duration = max(t for t in times if t is not None) + 1 / 24  # the last frame shows for one frame time
    assert abs(duration - 4.0) < 0.01
    thumb = Image.open(io.BytesIO(await download(job["result"]["thumbnailUrl"])))
    assert thumb.width > 0


async def test_result_urls_are_signed_expiring_and_serve_ranges(paid_server: PaidServer) -> None:
    import httpx

    payer = await new_payer(paid_server.devnet, 1_000_000)
    job = await pay_and_wait(
        paid_server, payer.key, "/api/generate/grok/generate", {"prompt": "ranges"}, timeout=90
    )
    url = job["result"]["imageUrl"]
    async with httpx.AsyncClient(timeout=30) as http:
        whole = await http.get(url)
        part = await http.get(url, headers={"Range": "bytes=8-23"})
        head = await http.head(url)
        tampered = await http.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
        unsigned = await http.get(url.split("?", 1)[0])
    assert whole.status_code == 200 and whole.headers["content-type"] == "image/png"
    assert part.status_code == 206 and part.content == whole.content[8:24]
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(whole.content)
    assert tampered.status_code == 403 and tampered.json()["code"] == "url_expired"
    assert unsigned.status_code == 403
