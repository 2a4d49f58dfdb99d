"""The local blob store: atomic writes, safe keys, signed expiring URLs, retention sweeps."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from studio402.errors import InputError, NotFound
from studio402.storage.base import UrlSigner, check_key
from studio402.storage.local import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", UrlSigner(b"k" * 32, "http://127.0.0.1:8402"))


async def test_put_get_stat_delete(store: LocalBlobStore) -> None:
    info = await store.put("results/job_1/image.png", b"\x89PNG data", "image/png")
    assert (info.size, info.content_type) == (9, "image/png")
    assert await store.get("results/job_1/image.png") == b"\x89PNG data"
    assert await store.stat("results/job_1/image.png") == info
    await store.delete("results/job_1/image.png")
    assert await store.stat("results/job_1/image.png") is None
    with pytest.raises(NotFound):
        await store.get("results/job_1/image.png")


UNSAFE = ["../etc/passwd", "/abs/x.png", "results/../x", "results", "a b/c", "results/x/"]


@pytest.mark.parametrize("key", UNSAFE)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InputError):
        check_key(key)


def test_signed_urls_expire_and_bind_the_key() -> None:
    signer = UrlSigner(b"k" * 32, "http://h")
    url = signer.url("results/j/video.mp4", 60, now=1000)
    query = dict(p.split("=") for p in url.split("?", 1)[1].split("&"))
    assert signer.verify("results/j/video.mp4", query["e"], query["s"], now=1059)
    assert not signer.verify("results/j/video.mp4", query["e"], query["s"], now=1061)  # expired
    assert not signer.verify("results/j/image.png", query["e"], query["s"], now=1000)  # another file
    assert not signer.verify("results/j/video.mp4", str(int(query["e"]) + 1000), query["s"], now=1000)
    other = UrlSigner(b"x" * 32, "http://h")
    assert not other.verify("results/j/video.mp4", query["e"], query["s"], now=1000)


async def test_sweep_removes_only_old_files_of_one_area(store: LocalBlobStore) -> None:
    for key in ("results/old/a.png", "results/new/b.png", "uploads/u/c.png"):
        await store.put(key, b"x", "image/png")
    old = time.time() - 40 * 86_400
    os.utime(store.path("results/old/a.png"), (old, old))
    os.utime(store.path("uploads/u/c.png"), (old, old))
    assert await store.sweep("results", time.time() - 30 * 86_400) == 1
    assert await store.stat("results/old/a.png") is None
    assert await store.stat("results/new/b.png") is not None
    assert await store.stat("uploads/u/c.png") is not None  # another area, another retention
    assert await store.sweep("media", time.time()) == 0  # an area that does not exist yet
