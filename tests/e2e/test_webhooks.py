"""Terminal job events reach `callBackUrl`: signed with the job's own secret, retried with backoff,
recorded, never sent to a private address, and a receiver's answer is read only up to 64 KiB."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import pytest
from sqlalchemy import select

from studio402.backends.preview.backend import PreviewBackend
from studio402.catalog import CATALOG
from studio402.db.schema import webhook_deliveries
from studio402.jobs.model import Job
from studio402.jobs.view import job_view
from studio402.jobs.webhooks import MAX_ATTEMPTS, WebhookSender, backoff
from studio402.media.fetch import FetchPolicy, SafeFetcher
from tests.backends.harness import JobHarness
from tests.fakes.webhook_receiver import Received, WebhookReceiver
from tests.fetch.servers import MapResolver, Recorder, SocketOption, make_certificate

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStream(httpcore.AsyncNetworkStream):
    """A network stream that counts the bytes the HTTP client reads through it (after TLS)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, backend: CountingBackend) -> None:
        self._inner = inner
        self._backend = backend

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._inner.read(max_bytes, timeout)
        self._backend.received += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return CountingStream(
            await self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CountingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.received = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return CountingStream(stream, self)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass
class Hooks:
    """A receiver at https://hooks.test (127.0.0.2) and fetchers that trust its certificate."""

    server: WebhookReceiver
    cert: Path

    def url(self, path: str) -> str:
        return f"https://hooks.test:{self.server.port}{path}"

    def fetcher(
        self, *, timeout: float = 30.0, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> SafeFetcher:
        policy = FetchPolicy(
            total_timeout_s=timeout, extra_allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),)
        )
        return SafeFetcher(
            policy,
            resolver=MapResolver({"hooks.test": [[ipaddress.ip_address("127.0.0.2")]]}),
            ssl_context=ssl.create_default_context(cafile=str(self.cert)),
            network_backend=backend,
        )


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    cert, key = make_certificate(tmp_path, "hooks.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    receiver = WebhookReceiver("127.0.0.2", server_ctx)
    await receiver.start()
    yield Hooks(receiver, cert)
    await receiver.stop()


def webhook_sender(
    harness: JobHarness, fetcher: SafeFetcher, clock: Callable[[], float] = time.time
) -> WebhookSender:
    """A sender on the harness's database, viewing jobs as the API does."""
    return WebhookSender(
        harness.engine,
        fetcher,
        SECRET,
        clock=clock,
        view=lambda j: job_view(j, blobs=harness.blobs, catalog=CATALOG, ttl=60),
    )


async def ended_job(harness: JobHarness, callback: str) -> Job:
    job = await harness.submit(
        "nano-banana/generate", {"prompt": "kite", "imageSize": "512", "callBackUrl": callback}
    )
    return await harness.run(job.id)


async def receiver_key(harness: JobHarness, job: Job) -> bytes:
    """The key a receiver needs to verify this job's deliveries: today, the instance-wide one."""
    return SECRET


def verifies(delivery: Received, key: bytes) -> bool:
    message_id, timestamp = delivery.headers["webhook-id"], delivery.headers["webhook-timestamp"]
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + delivery.body, hashlib.sha256).digest()
    return delivery.headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()


async def delivery_rows(harness: JobHarness) -> list[Any]:
    return await harness.engine.read(lambda conn: list(conn.execute(select(webhook_deliveries))))


async def test_signed_delivery_retried_until_accepted(tmp_path: Path, hooks: Hooks) -> None:
    server = hooks.server
    server.statuses = [503, 500, 200]
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    clock = Clock()
    sender = webhook_sender(harness, hooks.fetcher(), clock=clock)
    job = await ended_job(harness, hooks.url("/studio"))
    await sender.enqueue(job)
    await sender.enqueue(job)  # recorded once
    for attempt in range(3):
        assert await sender.deliver_due() == 1
        clock.now += backoff(attempt)
    assert await sender.deliver_due() == 0
    key = await receiver_key(harness, job)
    [row] = await delivery_rows(harness)
    await harness.close()
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert len(server.received) == 3
    last = server.received[-1]
    assert verifies(last, key)
    assert {r.headers["webhook-id"] for r in server.received} == {last.headers["webhook-id"]}  # same id
    event = json.loads(last.body)
    assert event["type"] == "job.complete" and event["data"]["jobId"] == job.id
    assert event["data"]["result"]["imageUrl"].startswith("http://127.0.0.1:8402/blobs/")


async def test_a_huge_answer_is_read_only_up_to_64_kib(tmp_path: Path, hooks: Hooks) -> None:
    hooks.server.answer_bytes = 32 * 1024 * 1024
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    counter = CountingBackend()
    sender = webhook_sender(harness, hooks.fetcher(backend=counter))
    await sender.enqueue(await ended_job(harness, hooks.url("/huge")))
    assert await sender.deliver_due() == 1
    [row] = await delivery_rows(harness)
    await harness.close()
    assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 200)
    # The status line and headers, then at most 64 KiB of body plus the last TLS record read.
    assert counter.received < 64 * 1024 + 32 * 1024, counter.received


async def test_a_trickling_answer_does_not_lose_the_status(tmp_path: Path, hooks: Hooks) -> None:
    hooks.server.answer_bytes, hooks.server.trickle = 1024 * 1024, True
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    counter = CountingBackend()
    sender = webhook_sender(harness, hooks.fetcher(timeout=1.0, backend=counter))
    await sender.enqueue(await ended_job(harness, hooks.url("/slow")))
    assert await sender.deliver_due() == 1
    [row] = await delivery_rows(harness)
    await harness.close()
    # The receiver said 200 before dribbling its body: that answer counts, once; no retry is scheduled.
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 1, 200, None)
    assert len(hooks.server.received) == 1 and counter.received < 64 * 1024


async def test_gives_up_after_twelve_attempts_and_on_permanent_errors(tmp_path: Path, hooks: Hooks) -> None:
    server = hooks.server
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    clock = Clock()
    sender = webhook_sender(harness, hooks.fetcher(), clock=clock)
    server.statuses = [503]
    await sender.enqueue(await ended_job(harness, hooks.url("/a")))
    for _ in range(MAX_ATTEMPTS + 2):
        await sender.deliver_due()
        clock.now += 400
    server.statuses = [410]
    await sender.enqueue(await ended_job(harness, hooks.url("/b")))
    await sender.deliver_due()
    rows = {r.url.rsplit("/", 1)[1]: r for r in await delivery_rows(harness)}
    await harness.close()
    assert (rows["a"].state, rows["a"].attempts) == ("failed", MAX_ATTEMPTS)
    assert (rows["b"].state, rows["b"].attempts, rows["b"].last_status) == ("failed", 1, 410)


async def test_private_targets_are_refused_without_a_connection(tmp_path: Path) -> None:
    recorder = Recorder("127.0.0.1")
    await recorder.start(0)
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    sender = webhook_sender(harness, SafeFetcher(FetchPolicy()))
    for target in (
        f"https://127.0.0.1:{recorder.port}/x",
        f"https://0x7f000001:{recorder.port}/x",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/hook",
    ):
        await sender.enqueue(await ended_job(harness, target))
    await sender.deliver_due()
    rows = await delivery_rows(harness)
    await harness.close()
    assert len(rows) == 4
    assert all(r.state == "failed" and r.last_error.startswith("address_not_allowed") for r in rows)
    assert await recorder.connections() == 0
    await recorder.stop()
