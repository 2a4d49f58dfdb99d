"""Blobs in an S3-compatible bucket (AWS S3, MinIO, R2, Ceph...): header-signed requests for our own
reads and writes, presigned URLs for clients (GET for results, PUT for direct uploads)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from urllib.parse import quote, urlencode

import httpx

from studio402.errors import NotFound, StorageError
from studio402.redact import redact_url
from studio402.storage.base import BlobInfo, check_key
from studio402.storage.sigv4 import MAX_PRESIGN_SECONDS, SigV4Signer, encode_path

log = logging.getLogger(__name__)

ATTEMPTS = 3  # 5xx and transport errors are retried, as the AWS SDKs do
LIST_PAGE = 1000  # keys per ListObjectsV2 page (the S3 maximum)
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_NS = "{*}"  # any namespace: AWS answers in its 2006-03-01 one, some compatible stores in none
_HASH_IN_THREAD = 1 << 20  # hashing a large video blocks the loop for tens of ms


class S3BlobStore:
    def __init__(
        self,
        signer: SigV4Signer,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        path_style: bool | None = None,
        prefix: str = "",
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._signer = signer
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        endpoint = (endpoint_url or f"https://s3.{signer.region}.amazonaws.com").rstrip("/")
        if path_style is None:
            path_style = endpoint_url is not None  # custom endpoints rarely have per-bucket DNS
        if path_style:
            self._base = f"{endpoint}/{bucket}"
        else:
            scheme, _, host = endpoint.partition("://")
            self._base = f"{scheme}://{bucket}.{host}"
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), transport=transport)
        self._sleep = sleep

    def object_url(self, key: str) -> str:
        return f"{self._base}/{encode_path(self._prefix + check_key(key))}"

    async def _send(
        self,
        method: str,
        url: str,
        *,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        ok: frozenset[int] = frozenset({200}),
        missing_ok: bool = False,
    ) -> httpx.Response:
        """One signed request, retried on 5xx and transport errors; a 404 comes back only if
        `missing_ok` (a missing bucket is always an error)."""
        payload_hash = await _sha256(content)
        delay = 0.2
        for attempt in range(1, ATTEMPTS + 1):
            signed = self._signer.sign_headers(method, url, headers, payload_hash=payload_hash)
            try:
                resp = await self._client.request(method, url, content=content or None, headers=signed)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    raise StorageError(
                        f"object storage unreachable ({type(exc).__name__})", code="storage_unavailable"
                    ) from exc
            else:
                if resp.status_code in ok:
                    return resp
                if resp.status_code == 404 and missing_ok and _s3_code(resp) != "NoSuchBucket":
                    return resp
                if resp.status_code not in _RETRY_STATUSES or attempt == ATTEMPTS:
                    raise StorageError(
                        f"object storage answered {method} with {resp.status_code} ({_s3_code(resp)})",
                        code="storage_unavailable",
                    )
            log.warning(
                "object storage %s %s failed (attempt %d); retrying", method, redact_url(url), attempt
            )
            await self._sleep(delay)
            delay *= 4
        raise AssertionError("unreachable")

    async def put(self, key: str, data: bytes, content_type: str) -> BlobInfo:
        await self._send("PUT", self.object_url(key), content=data, headers={"content-type": content_type})
        return BlobInfo(key, len(data), content_type)

    async def get(self, key: str) -> bytes:
        resp = await self._send("GET", self.object_url(key), missing_ok=True)
        if resp.status_code == 404:
            raise NotFound(f"no blob {key}")
        return resp.content

    async def stat(self, key: str) -> BlobInfo | None:
        resp = await self._send("HEAD", self.object_url(key), missing_ok=True)
        if resp.status_code == 404:
            return None
        return BlobInfo(
            key,
            int(resp.headers.get("content-length", "0")),
            resp.headers.get("content-type", "application/octet-stream"),
        )

    async def delete(self, key: str) -> None:
        await self._send("DELETE", self.object_url(key), ok=frozenset({200, 204}), missing_ok=True)

    def url(self, key: str, ttl_seconds: float) -> str:
        ttl = max(1, min(int(ttl_seconds), MAX_PRESIGN_SECONDS))
        return self._signer.presign("GET", self.object_url(key), ttl)

    def upload_url(self, key: str, content_type: str, ttl_seconds: float) -> str:
        """A presigned PUT for exactly this key and content type: bytes go straight to the bucket."""
        ttl = max(1, min(int(ttl_seconds), MAX_PRESIGN_SECONDS))
        return self._signer.presign("PUT", self.object_url(key), ttl, headers={"content-type": content_type})

    async def sweep(self, area: str, older_than: float) -> int:
        """Delete the objects under `area/` last modified before `older_than` (a bucket lifecycle rule
        does the same without listing; set the retention to 0 then)."""
        removed = 0
        async for key, modified in self._list(self._prefix + area + "/"):
            if modified < older_than:
                url = f"{self._base}/{encode_path(key)}"
                await self._send("DELETE", url, ok=frozenset({200, 204}), missing_ok=True)
                removed += 1
        return removed

    async def _list(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        token: str | None = None
        while True:
            query = {"list-type": "2", "max-keys": str(LIST_PAGE), "prefix": prefix}
            if token:
                query["continuation-token"] = token
            resp = await self._send("GET", f"{self._base}/?{urlencode(query, quote_via=quote)}")
            root = ET.fromstring(resp.content)  # noqa: S314 - the operator's own bucket answers
            for item in root.iterfind(f"{_NS}Contents"):
                key = item.findtext(f"{_NS}Key") or ""
                stamp = item.findtext(f"{_NS}LastModified") or ""
                yield key, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            token = root.findtext(f"{_NS}NextContinuationToken")
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return

    async def aclose(self) -> None:
        await self._client.aclose()


async def _sha256(data: bytes) -> str:
    if len(data) > _HASH_IN_THREAD:
        return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


def _s3_code(resp: httpx.Response) -> str:
    try:
        return ET.fromstring(resp.content).findtext("Code") or resp.reason_phrase  # noqa: S314
    except ET.ParseError:
        return resp.reason_phrase
