"""Blobs as files under `<data_dir>/blobs`, written atomically, content type in a sidecar."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from studio402.errors import NotFound
from studio402.storage.base import BlobInfo, UrlSigner, check_key

_META = ".type"


class LocalBlobStore:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root
        self.signer = signer
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> BlobInfo:
        await asyncio.to_thread(self._write, self.path(key), data, content_type)
        return BlobInfo(key, len(data), content_type)

    @staticmethod
    def _write(path: Path, data: bytes, content_type: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, payload in ((path.with_name(path.name + _META), content_type.encode()), (path, data)):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no blob {key}") from None

    async def stat(self, key: str) -> BlobInfo | None:
        path = self.path(key)
        try:
            size = path.stat().st_size
            content_type = path.with_name(path.name + _META).read_text()
        except FileNotFoundError:
            return None
        return BlobInfo(key, size, content_type)

    async def delete(self, key: str) -> None:
        path = self.path(key)
        for target in (path, path.with_name(path.name + _META)):
            target.unlink(missing_ok=True)

    async def sweep(self, area: str, older_than: float) -> int:
        """Delete the files of `area` ("results", "uploads", "media") last written before `older_than`."""
        return await asyncio.to_thread(self._sweep, self.root / area, older_than)

    @staticmethod
    def _sweep(folder: Path, older_than: float) -> int:
        removed = 0
        for path in folder.rglob("*") if folder.is_dir() else ():
            if path.is_file() and not path.name.endswith(_META) and path.stat().st_mtime < older_than:
                path.unlink(missing_ok=True)
                path.with_name(path.name + _META).unlink(missing_ok=True)
                removed += 1
        return removed

    def url(self, key: str, ttl_seconds: float) -> str:
        return self.signer.url(check_key(key), ttl_seconds)
