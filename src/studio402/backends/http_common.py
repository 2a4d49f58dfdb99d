"""HTTP plumbing shared by the upstream adapters: one client per adapter, and one HTTP exchange mapped to a
`BackendFailure` with the right code, `retryable`, `accepted` and `retry_after`.

Whether a failure *may* be retried is decided here, per exchange; whether and when to retry is the runner's
policy. A create request whose answer was lost after it was sent (read timeout, connection dropped) counts
as accepted: the upstream may have started (and billed) the job, so it is never sent again."""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import functools
import math
import ssl
import time
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

from studio402.backends.base import BackendFailure, BackendJob, FailureCode, MediaInput
from studio402.config import ProviderSettings
from studio402.redact import Scrubber

RETRY_AFTER_MS = "retry-after-ms"  # OpenAI
RETRY_AFTER = "retry-after"
CONNECT_TIMEOUT = 10.0
DETAIL_LIMIT = 300
# Requests one client sends at once. The rest wait on a semaphore, not in httpcore's pool: its queue costs
# O(waiting x connections) CPU per request, which pinned a worker holding thousands of jobs at 100% CPU
# (bench/load.py), and a wait there counts against the request's timeout.
MAX_CONNECTIONS = 100
_slots: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Semaphore] = weakref.WeakKeyDictionary()
MAX_WAIT = 300.0  # an upstream asking us to wait longer is misbehaving: the job's deadline decides instead
# A 20 s 4K video is ~100 MB; anything far past that is a broken upstream and must not exhaust memory.
MAX_RESULT_BYTES = 1 << 30

# One multipart part: (field name, (file name or None for a plain field, content, content type or None)).
Part = tuple[str, tuple[str | None, bytes | str, str | None]]

_BY_STATUS: Mapping[int, FailureCode] = {
    400: FailureCode.INVALID_REQUEST,
    401: FailureCode.AUTH,
    402: FailureCode.UNAVAILABLE,  # the operator's upstream account is out of credits
    403: FailureCode.AUTH,
    404: FailureCode.NOT_FOUND,
    408: FailureCode.TIMEOUT,
    409: FailureCode.UPSTREAM_ERROR,
    410: FailureCode.EXPIRED,
    429: FailureCode.RATE_LIMITED,
}
# Transport errors raised before the request was fully sent: the upstream cannot have created anything.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)
# Signed result URLs answer these once expired (Azure SAS: 403, S3/GCS: 403/404).
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_URLS_ONLY = Scrubber()


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def new_client(settings: ProviderSettings, default_base: str) -> httpx.AsyncClient:
    """The adapter's one client; every adapter shares one TLS context (building one costs ~100 ms)."""
    timeout = httpx.Timeout(settings.timeout_seconds, connect=min(CONNECT_TIMEOUT, settings.timeout_seconds))
    return httpx.AsyncClient(
        base_url=settings.base_url or default_base,
        timeout=timeout,
        verify=_tls(),
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20),
    )


def api_key(settings: ProviderSettings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


def upstream_model(settings: ProviderSettings, route_key: str, defaults: Mapping[str, str]) -> str | None:
    """The upstream model for a route: the operator's mapping (route key, then model), else our default."""
    model = route_key.split("/", 1)[0]
    for table in (settings.models, defaults):
        found = table.get(route_key) or table.get(model)
        if found:
            return found
    return None


def ensure_ready(name: str, settings: ProviderSettings, missing: list[str]) -> None:
    """Refuse a submission an adapter cannot make (before the upstream sees it: another backend may)."""
    if not settings.enabled or missing:
        why = ", ".join(missing) if missing else "enabled = false"
        raise BackendFailure(FailureCode.UNAVAILABLE, f"backend {name} is not configured ({why})")


def wait_seconds(value: str | float | None, scale: float = 1.0) -> float | None:
    """A wait the upstream asked for, in seconds, within [0, MAX_WAIT]; None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value) * scale
    except (TypeError, ValueError):  # JSON may hold anything
        return None
    return min(max(0.0, seconds), MAX_WAIT) if math.isfinite(seconds) else None


def retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    millis = wait_seconds(headers.get(RETRY_AFTER_MS), 0.001)
    if millis is not None:
        return millis
    value = headers.get(RETRY_AFTER)
    if not value:
        return None
    seconds = wait_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return wait_seconds(when.timestamp() - (time.time() if now is None else now))


def final(code: FailureCode, detail: str) -> BackendFailure:
    """A failure after the upstream accepted the job, which asking again cannot cure."""
    return BackendFailure(code, detail, accepted=True, retryable=False)


def parsed_json(resp: httpx.Response) -> Any:
    """The answer's JSON, or None when the body is not JSON (answers are untrusted)."""
    try:
        return resp.json()
    except ValueError:
        return None


def error_object(resp: httpx.Response) -> dict[str, Any]:
    """The `{"error": {...}}` object most APIs answer with (empty when the body has another shape)."""
    body = parsed_json(resp)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def error_text(resp: httpx.Response) -> str:
    body = parsed_json(resp)
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message") or error
        message = message or body.get("detail")
    text = str(message) if message else resp.text or resp.reason_phrase
    # The detail becomes the job's public error: URLs the upstream echoes lose their credentials.
    return f"HTTP {resp.status_code}: {_URLS_ONLY.scrub(text[: DETAIL_LIMIT * 4])}"[:DETAIL_LIMIT]


def status_failure(
    resp: httpx.Response, *, accepted: bool, code: FailureCode | None = None
) -> BackendFailure:
    status = resp.status_code
    if code is None:
        code = _BY_STATUS.get(status) or (
            FailureCode.UPSTREAM_ERROR if status >= 500 or status < 400 else FailureCode.INVALID_REQUEST
        )
    retryable = None if status >= 400 else False  # 2xx/3xx in the wrong place: a bug, not weather
    return BackendFailure(
        code, error_text(resp), accepted=accepted, retryable=retryable, retry_after=retry_after(resp.headers)
    )


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    creates: bool = False,
    accepted: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """One request; transport errors become failures. `creates`: this request starts a paid job."""
    slots = _slots.get(client)
    if slots is None:
        slots = _slots[client] = asyncio.Semaphore(MAX_CONNECTIONS)
    try:
        async with slots:
            return await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise transport_failure(exc, creates=creates, accepted=accepted) from exc


def transport_failure(exc: httpx.TransportError, *, creates: bool, accepted: bool) -> BackendFailure:
    code = FailureCode.TIMEOUT if isinstance(exc, httpx.TimeoutException) else FailureCode.UPSTREAM_ERROR
    what = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return BackendFailure(code, f"upstream unreachable ({what})", accepted=accepted)
    if creates:
        return final(
            code, f"no answer to the submission ({what}); it may have been accepted, so it is not sent again"
        )
    return BackendFailure(code, f"no answer from the upstream ({what})", accepted=accepted)


def _index(media: MediaInput) -> int:
    return media.loc[1] if len(media.loc) > 1 and isinstance(media.loc[1], int) else 0


def media_inputs(job: BackendJob, field: str) -> list[MediaInput]:
    """The loaded inputs of a media field, in request order; a field the request names must have them."""
    found = sorted(job.inputs_at(field), key=_index)
    if job.params.get(field) and not found:
        raise BackendFailure(
            FailureCode.INVALID_REQUEST, f"the media of '{field}' was not loaded", retryable=False
        )
    return found


def json_object(resp: httpx.Response, *, accepted: bool, retryable: bool = True) -> dict[str, Any]:
    body = parsed_json(resp)
    if not isinstance(body, dict):
        raise BackendFailure(
            FailureCode.UPSTREAM_ERROR,
            f"HTTP {resp.status_code}: the answer is not a JSON object",
            accepted=accepted,
            retryable=retryable,
        )
    return body


def decode_base64(text: Any, what: str) -> bytes:
    """Media the upstream already generated (and billed): broken data is final, never retried."""
    try:
        data = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise final(FailureCode.UPSTREAM_ERROR, f"{what} is not valid base64") from exc
    if not data:
        raise final(FailureCode.NO_MEDIA, f"{what} is empty")
    return data


def form_parts(fields: Mapping[str, object]) -> list[Part]:
    """Plain fields as multipart parts: httpx sends multipart only when there are parts."""
    return [(name, (None, str(value), None)) for name, value in fields.items() if value is not None]


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def download(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    what: str = "the result",
    limit: int = MAX_RESULT_BYTES,
) -> tuple[bytes, str | None]:
    """Fetch generated media (the job is accepted): expired links are final, 5xx and timeouts retryable.
    Streamed, so an upstream sending more than `limit` bytes fails the job instead of the process."""
    try:
        async with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code != 200:
                await resp.aread()
                if resp.status_code in _EXPIRED_STATUSES:
                    raise final(FailureCode.EXPIRED, f"{what} is no longer available ({error_text(resp)})")
                raise status_failure(resp, accepted=True)
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(what, limit)
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise _too_large(what, limit)
            content_type = resp.headers.get("content-type")
    except httpx.TransportError as exc:
        raise transport_failure(exc, creates=False, accepted=True) from exc
    if not body:
        raise final(FailureCode.NO_MEDIA, f"{what} is empty")
    return bytes(body), content_type


def _too_large(what: str, limit: int) -> BackendFailure:
    return final(FailureCode.UPSTREAM_ERROR, f"{what} is larger than {limit} bytes")
