"""studio402 on an S3-compatible bucket: direct uploads by presigned PUT, checked at confirmation, and
results served by presigned GET, with real payments on the devnet."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image
from x402.http.clients import x402HttpxClient

from studio402.chain.devnet import Devnet
from studio402.sdk.client import x402_client
from tests.devnet_fixture import new_payer
from tests.e2e.test_uploads import buy_upload, png
from tests.paid_support import PaidServer, pay_and_wait, running_server
from tests.s3_support import S3Server


@pytest.fixture
async def s3_server(
    devnet: Devnet, tmp_path: Path, s3_open: S3Server
) -> AsyncIterator[tuple[PaidServer, str]]:
    bucket = s3_open.new_bucket()
    async with running_server(devnet, tmp_path / "d", overrides=s3_open.settings(bucket)) as server:
        yield server, bucket


def keys(s3: S3Server, bucket: str) -> set[str]:
    listed = s3.boto().list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


async def put_direct(slot: dict[str, Any], data: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.put(slot["uploadUrl"], content=data, headers=slot["uploadHeaders"])


async def confirm(server: PaidServer, key: str, slot: dict[str, Any]) -> httpx.Response:
    async with x402HttpxClient(x402_client(key), base_url=server.base, timeout=60) as http:
        response: httpx.Response = await http.post(
            "/api/upload/confirm", json={"uploadId": slot["uploadId"], "blobUrl": slot["blobUrl"]}
        )
    return response


async def test_direct_upload_then_edit_with_results_in_the_bucket(
    s3_server: tuple[PaidServer, str], s3_open: S3Server
) -> None:
    server, bucket = s3_server
    payer = await new_payer(server.devnet, 2_000_000)
    slot = await buy_upload(server, payer.key, "ref.png", "image/png")
    assert slot["uploadUrl"].startswith(f"{s3_open.endpoint}/{bucket}/incoming/")
    assert slot["uploadHeaders"] == {"content-type": "image/png"}  # no Bearer: S3 takes one auth only
    picture = png((120, 80))
    stored = await put_direct(slot, picture)
    assert stored.status_code == 200, stored.text
    confirmed = await confirm(server, payer.key, slot)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["upload"]["blobUrl"] == slot["blobUrl"]
    assert keys(s3_open, bucket) == {slot["pathname"]}  # moved out of incoming/
    job = await pay_and_wait(
        server,
        payer.key,
        "/api/generate/nano-banana/edit",
        {"prompt": "make it cold", "imageSize": "512", "images": [slot["blobUrl"]]},
    )
    assert job["status"] == "complete", job
    image_url = job["result"]["imageUrl"]
    assert image_url.startswith(f"{s3_open.endpoint}/{bucket}/results/{job['jobId']}/")
    assert "X-Amz-Signature=" in image_url
    async with httpx.AsyncClient() as http:
        image = await http.get(image_url)
        # Our own signed /blobs link for the same file sends the client to the bucket.
        key = image_url.split(f"/{bucket}/", 1)[1].split("?", 1)[0]
        link = server.wiring.signer.url(key, 60)
        redirect = await http.get(link)
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (512, 512)
    assert redirect.status_code == 307 and redirect.headers["location"].startswith(s3_open.endpoint)
    assert await server.devnet.balance_of(payer.address) == 2_000_000 - 10_000 - 45_000


async def test_direct_uploads_are_checked_when_confirmed(
    s3_server: tuple[PaidServer, str], s3_open: S3Server
) -> None:
    server, bucket = s3_server
    payer = await new_payer(server.devnet, 1_000_000)
    slot = await buy_upload(server, payer.key, "a.png", "image/png")
    early = await confirm(server, payer.key, slot)
    assert (early.status_code, early.json()["code"]) == (400, "upload_missing")
    await put_direct(slot, b"this is text, not a picture")
    text = await confirm(server, payer.key, slot)
    assert (text.status_code, text.json()["code"]) == (400, "media_unsupported")
    assert keys(s3_open, bucket) == set()  # refused bytes are deleted
    await put_direct(slot, b"\x89PNG" + bytes(26 * 1024 * 1024))
    huge = await confirm(server, payer.key, slot)
    assert (huge.status_code, huge.json()["code"]) == (413, "body_too_large")
    assert keys(s3_open, bucket) == set()
    await put_direct(slot, png())  # the slot stays open until something valid arrives
    ok = await confirm(server, payer.key, slot)
    assert ok.status_code == 200, ok.text
    other = await new_payer(server.devnet, 0)
    stolen = await confirm(server, other.key, slot)
    assert stolen.status_code == 404
    assert await server.devnet.balance_of(payer.address) == 1_000_000 - 10_000  # only the slot was paid


async def test_uploads_through_the_app_and_a_video_result(
    devnet: Devnet, tmp_path: Path, s3_open: S3Server
) -> None:
    bucket = s3_open.new_bucket()
    overrides = s3_open.settings(bucket, direct_uploads=False, prefix="tenant/")
    async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        payer = await new_payer(devnet, 3_000_000)
        slot = await buy_upload(server, payer.key, "first.png", "image/png")
        assert slot["uploadUrl"].startswith(server.base + "/api/upload/blob")
        assert slot["uploadHeaders"]["authorization"] == f"Bearer {slot['clientToken']}"
        async with httpx.AsyncClient(timeout=60) as http:
            stored = await http.put(slot["uploadUrl"], content=png((160, 90)), headers=slot["uploadHeaders"])
        assert stored.status_code == 200, stored.text
        assert (await confirm(server, payer.key, slot)).status_code == 200
        assert keys(s3_open, bucket) == {"tenant/" + slot["pathname"]}
        clip = await pay_and_wait(
            server,
            payer.key,
            "/api/generate/seedance-fast/i2v",
            {
                "prompt": "@image1 drifts",
                "duration": 4,
                "outputResolution": "480p",
                "urls": [slot["blobUrl"]],
            },
        )
    assert clip["status"] == "complete", clip
    async with httpx.AsyncClient() as http:
        video = await http.get(clip["result"]["videoUrl"])
        thumb = await http.get(clip["result"]["thumbnailUrl"])
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 854, 480)
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"
    assert {k.split("/")[1] for k in keys(s3_open, bucket)} == {"uploads", "results"}  # all under the prefix
