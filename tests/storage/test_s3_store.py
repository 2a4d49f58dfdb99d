"""The S3 blob store against a real S3-compatible server that checks every signature."""

from __future__ import annotations

import time

import httpx
import pytest

from studio402.errors import NotFound, StorageError
from studio402.storage.s3 import S3BlobStore
from studio402.storage.sigv4 import Credentials, SigV4Signer
from tests.s3_support import REGION, S3Server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_round_trip_under_a_prefix(s3_checked: S3Server) -> None:
    bucket = s3_checked.new_bucket()
    store = s3_checked.store(bucket, prefix="tenant-a/")
    key = "uploads/3f1c/My_Photo-1.final.v2.png"
    info = await store.put(key, PNG, "image/png")
    assert (info.size, info.content_type) == (len(PNG), "image/png")
    assert await store.get(key) == PNG
    stat = await store.stat(key)
    assert stat is not None and (stat.size, stat.content_type) == (len(PNG), "image/png")
    # Seen from the outside (boto3): under the prefix, with the content type we sent.
    head = s3_checked.boto().head_object(Bucket=bucket, Key="tenant-a/" + key)
    assert (head["ContentLength"], head["ContentType"]) == (len(PNG), "image/png")
    await store.delete(key)
    assert await store.stat(key) is None
    with pytest.raises(NotFound):
        await store.get(key)
    await store.delete(key)  # deleting twice is fine
    await store.aclose()


async def test_a_wrong_secret_is_refused_by_the_server(s3_checked: S3Server) -> None:
    bucket = s3_checked.new_bucket()
    store = s3_checked.store(bucket, secret="not-the-secret")
    with pytest.raises(StorageError) as info:
        await store.put("results/j1/image.png", PNG, "image/png")
    assert info.value.code == "storage_unavailable" and "403" in info.value.detail
    assert "SignatureDoesNotMatch" in info.value.detail
    await store.aclose()


async def test_sweep_deletes_only_old_objects_of_one_area(s3_checked: S3Server) -> None:
    bucket = s3_checked.new_bucket()
    store = s3_checked.store(bucket, prefix="p")
    for i in range(3):
        await store.put(f"results/j{i}/image.png", PNG, "image/png")
    await store.put("uploads/u1/a.png", PNG, "image/png")
    assert await store.sweep("results", time.time() - 3600) == 0  # all newer than an hour ago
    assert await store.sweep("results", time.time() + 60) == 3
    assert await store.stat("results/j0/image.png") is None
    assert await store.stat("uploads/u1/a.png") is not None
    await store.aclose()


async def test_sweep_follows_continuation_pages(
    s3_checked: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_checked.new_bucket()
    store = s3_checked.store(bucket)
    monkeypatch.setattr("studio402.storage.s3.LIST_PAGE", 2)
    for i in range(5):
        await store.put(f"media/{i}.png", PNG, "image/png")
    assert await store.sweep("media", time.time() + 60) == 5
    assert s3_checked.boto().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    await store.aclose()


async def test_missing_bucket_is_a_storage_error(s3_checked: S3Server) -> None:
    store = s3_checked.store("no-such-bucket-here")
    with pytest.raises(StorageError):
        await store.put("results/j/image.png", PNG, "image/png")
    with pytest.raises(StorageError):
        await store.sweep("results", time.time())
    await store.aclose()


def _flaky(failures: list[int | Exception]) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, content=b"<Error><Code>SlowDown</Code></Error>")
        return httpx.Response(200)

    return httpx.MockTransport(handler), seen


def _store(transport: httpx.MockTransport, sleeps: list[float]) -> S3BlobStore:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    signer = SigV4Signer(Credentials("AKID", "secret"), REGION)
    return S3BlobStore(signer, "b", endpoint_url="http://s3.test", transport=transport, sleep=sleep)


async def test_5xx_and_dropped_connections_are_retried() -> None:
    transport, seen = _flaky([503, httpx.ReadError("reset")])
    sleeps: list[float] = []
    store = _store(transport, sleeps)
    await store.put("results/j/image.png", PNG, "image/png")
    assert seen == ["PUT"] * 3 and len(sleeps) == 2 and sleeps[1] > sleeps[0]


async def test_retries_end_in_a_storage_error() -> None:
    transport, seen = _flaky([503, 503, 503])
    store = _store(transport, [])
    with pytest.raises(StorageError) as info:
        await store.put("results/j/image.png", PNG, "image/png")
    assert "503" in info.value.detail and "SlowDown" in info.value.detail and len(seen) == 3


async def test_a_4xx_is_not_retried() -> None:
    transport, seen = _flaky([403])
    store = _store(transport, [])
    with pytest.raises(StorageError):
        await store.get("results/j/image.png")
    assert seen == ["GET"]


def test_addressing() -> None:
    signer = SigV4Signer(Credentials("AKID", "secret"), "eu-west-3")
    aws = S3BlobStore(signer, "media-bucket")
    assert (
        aws.object_url("results/j/a.png") == "https://media-bucket.s3.eu-west-3.amazonaws.com/results/j/a.png"
    )
    minio = S3BlobStore(signer, "media-bucket", endpoint_url="http://minio:9000/", prefix="/s402/")
    assert minio.object_url("results/j/a.png") == "http://minio:9000/media-bucket/s402/results/j/a.png"
    vhost = S3BlobStore(signer, "b", endpoint_url="https://r2.example.com", path_style=False)
    assert vhost.object_url("media/x.png") == "https://b.r2.example.com/media/x.png"


async def test_presigned_urls_work_with_plain_http(s3_open: S3Server) -> None:
    bucket = s3_open.new_bucket()
    store = s3_open.store(bucket)
    put_url = store.upload_url("incoming/u1/clip.png", "image/png", 300)
    async with httpx.AsyncClient() as http:
        stored = await http.put(put_url, content=PNG, headers={"content-type": "image/png"})
        assert stored.status_code == 200, stored.text
        fetched = await http.get(store.url("incoming/u1/clip.png", 300))
    assert fetched.content == PNG and fetched.headers["content-type"] == "image/png"
    query = httpx.URL(put_url).params
    assert query["X-Amz-SignedHeaders"] == "content-type;host"  # another content type breaks the signature
    assert query["X-Amz-Expires"] == "300"
    await store.aclose()
