"""The BlobStore port and signed, expiring URLs for it."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from studio402.errors import InputError

# One path segment of a key, and so exactly the file names an upload may have. Written without
# look-arounds (pydantic's pattern engine has none): every '.' is followed by another allowed character
# or ends the segment, so a segment never contains "..".
_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])*\.?"
NAME_PATTERN = rf"^{_SEGMENT}$"
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{40}")
_KEY = re.compile(rf"^[a-z0-9][a-z0-9_\-]*(/{_SEGMENT})+$")


def check_key(key: str) -> str:
    """Keys are `area/…/name.ext` of safe characters: never a path traversal, never absolute."""
    if not _KEY.match(key) or ".." in key or len(key) > 300:
        raise InputError(f"invalid blob key {key!r}", code="invalid_blob_key")
    return key


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    content_type: str


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> BlobInfo: ...

    async def get(self, key: str) -> bytes: ...

    async def stat(self, key: str) -> BlobInfo | None: ...

    async def delete(self, key: str) -> None: ...

    def url(self, key: str, ttl_seconds: float) -> str:
        """A URL anyone may GET until it expires."""
        ...

    async def sweep(self, area: str, older_than: float) -> int:
        """Delete the blobs of `area` last written before `older_than`; how many."""
        ...


class DirectUploads(Protocol):
    """A store clients can write to themselves (S3: a presigned PUT), so bytes skip the app."""

    def upload_url(self, key: str, content_type: str, ttl_seconds: float) -> str: ...


class UrlSigner:
    """HMAC-signed `?e=<expiry>&s=<signature>` for blob URLs served by the app itself."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._secret = secret
        self._base = base_url.rstrip("/")

    def _sign(self, key: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]

    def url(self, key: str, ttl_seconds: float, *, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + ttl_seconds)
        return f"{self._base}/blobs/{quote(key)}?e={expires}&s={self._sign(key, expires)}"

    @staticmethod
    def well_formed(expires: str, signature: str) -> bool:
        """`e` a Unix time in ASCII digits, `s` our 40 hex digits: anything else was never signed by us
        (and must not reach int(), which takes "²"-like digits or chokes on thousands of them)."""
        return _EXPIRES.fullmatch(expires) is not None and _SIGNATURE.fullmatch(signature) is not None

    def verify(self, key: str, expires: str, signature: str, *, now: float | None = None) -> bool:
        if not self.well_formed(expires, signature):
            return False
        if int(expires) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._sign(key, int(expires)), signature)
