"""The paid 3-step upload and media inputs: verified by content before any charge, then used by jobs."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from eth_account import Account
from PIL import Image
from x402.http.clients import x402HttpxClient

from studio402.chain.devnet import Devnet
from studio402.media.video import encode_mp4
from studio402.sdk.client import x402_client
from tests.devnet_fixture import new_payer
from tests.fetch.servers import Recorder
from tests.paid_support import (
    PaidServer,
    challenge,
    pay_and_wait,
    payment_header,
    running_server,
    transfers_from,
)


def png(size: tuple[int, int] = (96, 64), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def mp4(frames: int = 12) -> bytes:
    pictures = (np.full((64, 96, 3), i * 10, dtype=np.uint8) for i in range(frames))
    return encode_mp4(pictures, width=96, height=64, fps=12)


async def buy_upload(server: PaidServer, key: str, filename: str, content_type: str) -> dict[str, Any]:
    async with x402HttpxClient(x402_client(key), base_url=server.base, timeout=60) as http:
        response = await http.post("/api/upload", json={"filename": filename, "contentType": content_type})
    assert response.status_code == 200, response.text
    slot: dict[str, Any] = response.json()
    return slot


async def put(
    server: PaidServer,
    slot: dict[str, Any],
    data: bytes,
    content_type: str | None = None,
    token: str | None = None,
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.put(
            slot["uploadUrl"],
            content=data,
            headers={
                "authorization": f"Bearer {token or slot['clientToken']}",
                "x-content-type": content_type or slot["contentType"],
            },
        )


async def upload(server: PaidServer, key: str, filename: str, content_type: str, data: bytes) -> str:
    slot = await buy_upload(server, key, filename, content_type)
    stored = await put(server, slot, data)
    assert stored.status_code == 200, stored.text
    async with x402HttpxClient(x402_client(key), base_url=server.base, timeout=60) as http:
        confirmed = await http.post(
            "/api/upload/confirm", json={"uploadId": slot["uploadId"], "blobUrl": stored.json()["url"]}
        )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["success"] is True
    blob_url: str = confirmed.json()["upload"]["blobUrl"]
    return blob_url


async def test_three_step_upload_then_edit_and_i2v(paid_server: PaidServer) -> None:
    payer = await new_payer(paid_server.devnet, 5_000_000)
    image_url = await upload(paid_server, payer.key, "reference.png", "image/png", png())
    assert image_url.startswith(paid_server.base + "/blobs/uploads/")
    edited = await pay_and_wait(
        paid_server,
        payer.key,
        "/api/generate/nano-banana/edit",
        {"prompt": "make it cold", "imageSize": "512", "images": [image_url]},
    )
    assert edited["status"] == "complete", edited
    video_url = await upload(paid_server, payer.key, "motion.mp4", "video/mp4", mp4())
    clip = await pay_and_wait(
        paid_server,
        payer.key,
        "/api/generate/seedance-fast/i2v",
        {
            "prompt": "@image1 moves like @video1",
            "mode": "reference",
            "duration": 4,
            "outputResolution": "480p",
            "urls": [image_url, video_url],
        },
    )  # types read from content
    assert clip["status"] == "complete", clip
    assert clip["result"]["width"] == 854 and clip["result"]["height"] == 480
    spent = 2 * 10_000 + 45_000 + 4 * 80_000  # two $0.01 uploads, a 512 edit, 4 s of 480p Seedance Fast
    assert await paid_server.devnet.balance_of(payer.address) == 5_000_000 - spent


async def test_upload_refusals(paid_server: PaidServer) -> None:
    payer, other = (
        await new_payer(paid_server.devnet, 1_000_000),
        await new_payer(paid_server.devnet, 1_000_000),
    )
    slot = await buy_upload(paid_server, payer.key, "a.png", "image/png")
    other_slot = await buy_upload(paid_server, payer.key, "b.png", "image/png")
    text = await put(paid_server, slot, b"just some text, not a picture at all")
    assert (text.status_code, text.json()["code"]) == (400, "media_unsupported")
    wrong_header = await put(paid_server, slot, png(), content_type="video/mp4")
    assert (wrong_header.status_code, wrong_header.json()["code"]) == (400, "upload_type_mismatch")
    foreign = await put(paid_server, slot, png(), token=other_slot["clientToken"])
    assert (foreign.status_code, foreign.json()["code"]) == (403, "upload_path_mismatch")
    forged = await put(paid_server, slot, png(), token=slot["clientToken"][:-3] + "AAA")
    assert (forged.status_code, forged.json()["code"]) == (401, "upload_token_invalid")
    video_slot = await buy_upload(paid_server, payer.key, "v.mp4", "video/mp4")
    as_video = await put(paid_server, video_slot, png())
    assert (as_video.status_code, as_video.json()["code"]) == (400, "media_kind_mismatch")
    truncated = await put(paid_server, video_slot, mp4()[:-700])
    assert (truncated.status_code, truncated.json()["code"]) == (400, "media_corrupt")
    oversize = await put(paid_server, slot, b"\x89PNG" + b"0" * (26 * 1024 * 1024))
    assert (oversize.status_code, oversize.json()["code"]) == (413, "body_too_large")
    ok = await put(paid_server, slot, png())
    assert ok.status_code == 200
    again = await put(paid_server, slot, png())
    assert (again.status_code, again.json()["code"]) == (403, "upload_already_written")
    async with x402HttpxClient(x402_client(other.key), base_url=paid_server.base, timeout=60) as http:
        stolen = await http.post(
            "/api/upload/confirm", json={"uploadId": slot["uploadId"], "blobUrl": ok.json()["url"]}
        )
    assert stolen.status_code == 404
    paid_server.wiring.uploads._clock = lambda: 10**10  # far past every token expiry
    expired = await put(paid_server, other_slot, png())
    assert (expired.status_code, expired.json()["code"]) == (401, "upload_token_expired")


@pytest.mark.parametrize(
    ("label", "body", "code"),
    [
        (
            "text as an image",
            {"images": ["data:image/png;base64," + base64.b64encode(b"hello there").decode()]},
            "media_unsupported",
        ),
        ("bad base64", {"images": ["data:image/png;base64,AAAA@@@@"]}, "media_invalid_base64"),
        ("unknown upload", {"images": ["http://127.0.0.1:8402/blobs/uploads/nope/a.png"]}, "unknown_blob"),
        ("loopback URL", {"images": ["https://127.1/a.png"]}, "address_not_allowed"),
        ("metadata URL", {"images": ["https://169.254.169.254/latest/meta-data"]}, "address_not_allowed"),
    ],
)
async def test_unusable_media_is_400_and_never_charged(
    paid_server: PaidServer, label: str, body: dict[str, Any], code: str
) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    full = {"prompt": "p", **body}
    if "127.0.0.1:8402" in str(body):
        full["images"] = [paid_server.base + "/blobs/uploads/nope/a.png"]
    async with paid_server.client() as http:
        unpaid = await http.post("/api/generate/nano-banana/edit", json=full)
        assert unpaid.status_code == 400, (label, unpaid.text)
        assert unpaid.json()["code"] == code and "PAYMENT-REQUIRED" not in unpaid.headers
        accepted = await challenge(
            http,
            "/api/generate/nano-banana/edit",
            {"prompt": "p", "images": ["data:image/png;base64," + base64.b64encode(png()).decode()]},
        )
        paid = await http.post(
            "/api/generate/nano-banana/edit",
            json=full,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted)},
        )
    assert paid.status_code == 400 and paid.json()["code"] == code
    assert await transfers_from(devnet, payer.address) == []


async def test_inline_and_remote_media(devnet: Devnet, tmp_path: Path) -> None:
    """data: URLs, bare base64 and a URL from an operator-allowed host; a loopback URL makes no connection."""
    payer = await new_payer(devnet, 2_000_000)
    recorder = Recorder("127.0.0.1")
    await recorder.start(0)
    image = png((128, 96), (20, 160, 60))
    media_server = await asyncio.start_server(lambda r, w: _serve_png(r, w, image), "127.0.0.2", 0)
    port = media_server.sockets[0].getsockname()[1]
    overrides = {"media.allow_http": True, "media.allowed_networks": ["127.0.0.2/32"]}
    async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        b64 = base64.b64encode(image).decode()
        for ref in (f"data:image/png;base64,{b64}", b64, f"http://127.0.0.2:{port}/img.png"):
            job = await pay_and_wait(
                server,
                payer.key,
                "/api/generate/flux-2-pro/edit",
                {"prompt": "p", "resolution": "0.5 MP", "images": [ref]},
            )
            assert job["status"] == "complete", (ref[:40], job)
        async with server.client() as http:
            refused = await http.post(
                "/api/generate/flux-2-pro/edit",
                json={"prompt": "p", "images": [f"http://127.0.0.1:{recorder.port}/x.png"]},
            )
    media_server.close()
    assert refused.status_code == 400 and refused.json()["code"] == "address_not_allowed"
    assert await recorder.connections() == 0
    await recorder.stop()
    assert Account.from_key(payer.key).address == payer.address


async def _serve_png(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    writer.close()
