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
from sqlalchemy import select, update
from x402.http.clients import x402HttpxClient

from studio402.backends.preview.backend import PreviewBackend
from studio402.catalog import CATALOG
from studio402.db.schema import jobs, webhook_deliveries
from studio402.db.webhook_store import SqlWebhookStore
from studio402.jobs.model import Job
from studio402.jobs.view import job_view
from studio402.jobs.webhooks import MAX_ATTEMPTS, WebhookSender, backoff, signing_key
from studio402.media.fetch import FetchPolicy, SafeFetcher
from studio402.sdk.client import x402_client
from tests.backends.harness import JobHarness
from tests.devnet_fixture import new_payer
from tests.fakes.webhook_receiver import Received, WebhookReceiver
from tests.fetch.servers import MapResolver, Recorder, SocketOption, make_certificate
from tests.paid_support import BODY, GENERATE, PaidServer, challenge, payment_header


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
        SqlWebhookStore(harness.engine),
        fetcher,
        clock=clock,
        view=lambda j: job_view(j, blobs=harness.blobs, catalog=CATALOG, ttl=60),
    )


async def ended_job(harness: JobHarness, callback: str) -> Job:
    job = await harness.submit(
        "nano-banana/generate", {"prompt": "kite", "imageSize": "512", "callBackUrl": callback}
    )
    return await harness.run(job.id)


async def receiver_key(harness: JobHarness, job: Job) -> bytes:
    """The key a receiver needs to verify this job's deliveries: the job's own secret, as its payer got it."""
    secret = await harness.engine.read(
        lambda conn: conn.execute(select(jobs.c.webhook_secret).where(jobs.c.id == job.id)).scalar_one()
    )
    assert isinstance(secret, str) and secret.startswith("whsec_")
    return signing_key(secret)


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


async def test_each_job_is_signed_with_its_own_secret(tmp_path: Path, hooks: Hooks) -> None:
    """Finding 6: with one instance-wide secret, receiver A (which must hold the key that verifies its own
    deliveries) could sign a forged delivery of receiver B's job that B accepts."""
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    sender = webhook_sender(harness, hooks.fetcher())
    a, b = await ended_job(harness, hooks.url("/a")), await ended_job(harness, hooks.url("/b"))
    await sender.enqueue(a)
    await sender.enqueue(b)
    assert await sender.deliver_due() == 2
    key_a, key_b = await receiver_key(harness, a), await receiver_key(harness, b)
    await harness.close()
    got = {r.path: r for r in hooks.server.received}
    assert verifies(got["/a"], key_a) and verifies(got["/b"], key_b)
    assert not verifies(got["/b"], key_a), "A's key verifies B's deliveries: A can forge them"
    assert not verifies(got["/a"], key_b)
    for delivery in got.values():  # never in the payload itself
        assert base64.b64encode(key_a) not in delivery.body and base64.b64encode(key_b) not in delivery.body


async def test_a_job_without_its_own_secret_is_never_sent(tmp_path: Path, hooks: Hooks) -> None:
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    sender = webhook_sender(harness, hooks.fetcher())
    job = await ended_job(harness, hooks.url("/unkeyed"))
    await harness.engine.write(
        lambda conn: conn.execute(update(jobs).where(jobs.c.id == job.id).values(webhook_secret=None))
    )
    await sender.enqueue(job)
    assert await sender.deliver_due() == 1
    [row] = await delivery_rows(harness)
    await harness.close()
    assert (row.state, row.attempts, row.last_status) == ("failed", 1, None)
    assert row.last_error.startswith("webhook_secret_missing") and hooks.server.received == []


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


async def test_the_secret_is_shown_once_in_the_paid_answer(paid_server: PaidServer) -> None:
    """In the 200 that created the job; not in a replay of the same payment, a poll or a listing."""
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    body = {**BODY, "callBackUrl": "https://hooks.example.com/studio"}
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http, body=body))
        first = await http.post(GENERATE, json=body, headers={"PAYMENT-SIGNATURE": header})
        replay = await http.post(GENERATE, json=body, headers={"PAYMENT-SIGNATURE": header})
        plain = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, await challenge(http))},
        )
    assert first.status_code == replay.status_code == plain.status_code == 200, first.text
    job_id, secret = first.json()["jobId"], first.json()["webhookSecret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert replay.json()["jobId"] == job_id and "webhookSecret" not in replay.json()
    assert "webhookSecret" not in plain.json()  # no callBackUrl, no secret
    async with x402HttpxClient(x402_client(payer.key), base_url=paid_server.base, timeout=60) as http:
        polled = await http.get(f"/api/jobs/{job_id}")
        listed = await http.get("/api/jobs")
    assert polled.status_code == listed.status_code == 200
    key = secret.removeprefix("whsec_")
    assert all(key not in text for text in (replay.text, polled.text, listed.text))
    db = paid_server.wiring.db
    assert db is not None
    stored = await db.read(
        lambda conn: conn.execute(select(jobs.c.webhook_secret).where(jobs.c.id == job_id)).scalar_one()
    )
    assert stored == secret  # what the sender signs this job's deliveries with
