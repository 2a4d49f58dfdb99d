"""AWS Signature Version 4 for S3-compatible stores: header-signed requests and presigned URLs.

Pure functions of (credentials, request, time): no I/O, so they are checked against AWS's published
examples and botocore. The signing key depends only on the day, so it is derived once a day."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN_SECONDS = 7 * 86_400  # S3 refuses presigned URLs valid longer than a week


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def encode_path(path: str) -> str:
    """RFC 3986 encoding of an object key path (S3 signs the path as sent, encoded once)."""
    return quote(path, safe="/")


def _encode(value: str) -> str:
    return quote(value, safe="")


def _stamp(now: datetime) -> tuple[str, str]:
    utc = now.astimezone(UTC)
    return utc.strftime("%Y%m%dT%H%M%SZ"), utc.strftime("%Y%m%d")


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in pairs))


def _host(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class SigV4Signer:
    def __init__(self, credentials: Credentials, region: str, service: str = "s3") -> None:
        self.credentials = credentials
        self.region = region
        self.service = service
        self._keys: dict[str, bytes] = {}

    def _scope(self, day: str) -> str:
        return f"{day}/{self.region}/{self.service}/aws4_request"

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = ("AWS4" + self.credentials.secret_access_key).encode()
            for part in (day, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}  # one day at a time: yesterday's key is never needed again
        return key

    def _signature(
        self,
        method: str,
        url: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        payload_hash: str,
        stamp: str,
        day: str,
    ) -> tuple[str, str]:
        """(signed header names, hex signature)."""
        named = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
        signed = ";".join(sorted(named))
        canonical = "\n".join(
            (
                method.upper(),
                urlsplit(url).path or "/",
                _canonical_query(query),
                "".join(f"{k}:{named[k]}\n" for k in sorted(named)),
                signed,
                payload_hash,
            )
        )
        to_sign = "\n".join(
            (ALGORITHM, stamp, self._scope(day), hashlib.sha256(canonical.encode()).hexdigest())
        )
        return signed, hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()

    def sign_headers(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        payload_hash: str = EMPTY_SHA256,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """The headers to send with this request: the given ones plus host, x-amz-date,
        x-amz-content-sha256 (S3 requires it), the session token if any, and authorization."""
        stamp, day = _stamp(now or datetime.now(UTC))
        out = {k.lower(): v for k, v in (headers or {}).items()}
        out.update({"host": _host(url), "x-amz-date": stamp, "x-amz-content-sha256": payload_hash})
        if self.credentials.session_token:
            out["x-amz-security-token"] = self.credentials.session_token
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        signed, signature = self._signature(method, url, query, out, payload_hash, stamp, day)
        out["authorization"] = (
            f"{ALGORITHM} Credential={self.credentials.access_key_id}/{self._scope(day)}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return out

    def presign(
        self,
        method: str,
        url: str,
        expires_in: int,
        *,
        headers: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> str:
        """A URL anyone can use for `method` until it expires; `headers` (e.g. content-type) are signed,
        so the request must carry exactly them."""
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"presigned URLs live 1 s to {MAX_PRESIGN_SECONDS} s, not {expires_in}")
        stamp, day = _stamp(now or datetime.now(UTC))
        signed_headers = {k.lower(): v for k, v in (headers or {}).items()}
        signed_headers["host"] = _host(url)
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{self.credentials.access_key_id}/{self._scope(day)}"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", ";".join(sorted(signed_headers))),
        ]
        if self.credentials.session_token:
            query.append(("X-Amz-Security-Token", self.credentials.session_token))
        _, signature = self._signature(method, url, query, signed_headers, UNSIGNED_PAYLOAD, stamp, day)
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return f"{base}?{_canonical_query(query)}&X-Amz-Signature={signature}"
