"""The HTTP plumbing shared by the upstream adapters: waits, status mapping, transport errors."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from studio402.backends.base import BackendFailure, FailureCode
from studio402.backends.http_common import (
    MAX_CONNECTIONS,
    MAX_WAIT,
    download,
    retry_after,
    send,
    status_failure,
    upstream_model,
)
from tests.backends.flows import provider


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "1e9"}, MAX_WAIT),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], wait: float | None) -> None:
    assert retry_after(httpx.Headers(headers)) == wait


def test_retry_after_as_an_http_date() -> None:
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after(httpx.Headers({"retry-after": date}), now=1_000_000) == 30.0


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, FailureCode.INVALID_REQUEST, False),
        (401, FailureCode.AUTH, False),
        (402, FailureCode.UNAVAILABLE, False),
        (404, FailureCode.NOT_FOUND, False),
        (408, FailureCode.TIMEOUT, True),
        (422, FailureCode.INVALID_REQUEST, False),
        (429, FailureCode.RATE_LIMITED, True),
        (500, FailureCode.UPSTREAM_ERROR, True),
        (503, FailureCode.UPSTREAM_ERROR, True),
        (302, FailureCode.UPSTREAM_ERROR, False),
    ],
)
def test_status_failure(status: int, code: FailureCode, retryable: bool) -> None:
    resp = httpx.Response(status, json={"error": {"message": "nope"}}, headers={"retry-after": "2"})
    failure = status_failure(resp, accepted=False)
    assert (failure.failure, failure.retryable, failure.retry_after) == (code, retryable, 2.0)
    assert "nope" in failure.detail


def _failing(exc: Exception) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://upstream.test")


@pytest.mark.parametrize(
    ("exc", "creates", "accepted", "retryable"),
    [
        (httpx.ConnectError("refused"), True, False, True),  # never sent: safe to send again
        (httpx.ReadTimeout("slow"), False, False, True),  # a poll: ask again
        (
            httpx.ReadTimeout("slow"),
            True,
            True,
            False,
        ),  # a create's answer was lost: maybe billed, never again
        (httpx.RemoteProtocolError("dropped"), True, True, False),
    ],
)
async def test_transport_errors(exc: Exception, creates: bool, accepted: bool, retryable: bool) -> None:
    client = _failing(exc)
    with pytest.raises(BackendFailure) as info:
        await send(client, "POST", "jobs", creates=creates)
    await client.aclose()
    assert (info.value.accepted, info.value.retryable) == (accepted, retryable)


def test_upstream_model_prefers_the_operator_mapping() -> None:
    settings = provider("x", "http://127.0.0.1:9", "k", models={"m/edit": "edit-model", "n": "n-model"})
    defaults = {"m": "default-m", "n": "default-n"}
    assert upstream_model(settings, "m/edit", defaults) == "edit-model"
    assert upstream_model(settings, "m/generate", defaults) == "default-m"
    assert upstream_model(settings, "n/generate", defaults) == "n-model"
    assert upstream_model(settings, "o/generate", defaults) is None


def _serving(answer: Callable[[], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: answer()), base_url="http://upstream.test"
    )


async def _chunks(count: int, size: int = 1024) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


async def _download_failure(answer: Callable[[], httpx.Response], limit: int = 4096) -> BackendFailure:
    client = _serving(answer)
    with pytest.raises(BackendFailure) as info:
        await download(client, "out.mp4", limit=limit)
    await client.aclose()
    return info.value


async def test_download_returns_the_body_and_its_type() -> None:
    client = _serving(
        lambda: httpx.Response(200, content=b"\x89PNG data", headers={"content-type": "image/png"})
    )
    assert await download(client, "out.png") == (b"\x89PNG data", "image/png")
    await client.aclose()


async def test_download_streams_a_body_within_the_limit() -> None:
    client = _serving(lambda: httpx.Response(200, content=_chunks(4)))
    data, _ = await download(client, "out.mp4", limit=4096)
    await client.aclose()
    assert data == b"x" * 4096


@pytest.mark.parametrize(
    "answer",
    [
        lambda: httpx.Response(200, content=b"x" * 5000),  # declared by content-length
        lambda: httpx.Response(200, content=_chunks(10)),  # chunked: caught while reading
    ],
)
async def test_download_refuses_more_than_the_limit(answer: Callable[[], httpx.Response]) -> None:
    failure = await _download_failure(answer)
    assert failure.code == FailureCode.UPSTREAM_ERROR
    assert (failure.accepted, failure.retryable) == (True, False)
    assert "larger than 4096 bytes" in failure.detail


@pytest.mark.parametrize(
    ("answer", "code", "retryable"),
    [
        (lambda: httpx.Response(404, json={"error": "gone"}), FailureCode.EXPIRED, False),
        (lambda: httpx.Response(503, text="busy"), FailureCode.UPSTREAM_ERROR, True),
        (lambda: httpx.Response(200, content=b""), FailureCode.NO_MEDIA, False),
    ],
)
async def test_download_failures(
    answer: Callable[[], httpx.Response], code: FailureCode, retryable: bool
) -> None:
    failure = await _download_failure(answer)
    assert (failure.code, failure.accepted, failure.retryable) == (code, True, retryable)


async def test_download_transport_error_is_retryable_and_accepted() -> None:
    client = _failing(httpx.ReadTimeout("slow"))
    with pytest.raises(BackendFailure) as info:
        await download(client, "out.mp4")
    await client.aclose()
    assert (info.value.code, info.value.accepted, info.value.retryable) == (FailureCode.TIMEOUT, True, True)


def test_upstream_error_text_never_repeats_url_credentials() -> None:
    """Finding 7: an upstream echoing a URL (a signed link, its own endpoint with a key) in its error
    message would put the key in the job's public error."""
    message = "cannot read https://u:pw-secret@cdn.example/x.png?X-Amz-Signature=topsecret"
    failure = status_failure(httpx.Response(400, json={"error": {"message": message}}), accepted=False)
    assert "topsecret" not in failure.detail and "pw-secret" not in failure.detail
    assert "https://cdn.example/x.png" in failure.detail


async def test_send_keeps_at_most_the_pool_size_in_flight_and_queues_the_rest() -> None:
    """Thousands of due polls wait on send's semaphore, not in httpcore's pool (quadratic CPU there)."""
    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://up") as client:
        answers = await asyncio.gather(*(send(client, "GET", "/status") for _ in range(3 * MAX_CONNECTIONS)))
    assert [a.status_code for a in answers] == [200] * (3 * MAX_CONNECTIONS)
    assert peak == MAX_CONNECTIONS
