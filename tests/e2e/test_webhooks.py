"""Terminal job events reach `callBackUrl`: signed, retried with backoff, recorded, and never sent to a
private address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from studio402.backends.preview.backend import PreviewBackend
from studio402.catalog import CATALOG
from studio402.db.schema import webhook_deliveries
from studio402.jobs.view import job_view
from studio402.jobs.webhooks import MAX_ATTEMPTS, WebhookSender, backoff
from studio402.media.fetch import FetchPolicy, SafeFetcher
from tests.backends.harness import JobHarness
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.fetch.servers import MapResolver, Recorder, make_certificate

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[WebhookReceiver, SafeFetcher]]:
    cert, key = make_certificate(tmp_path, "hooks.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    receiver = WebhookReceiver("127.0.0.2", server_ctx)
    await receiver.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    policy = FetchPolicy(extra_allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))
    fetcher = SafeFetcher(
        policy,
        resolver=MapResolver({"hooks.test": [[ipaddress.ip_address("127.0.0.2")]]}),
        ssl_context=client_ctx,
    )
    yield receiver, fetcher
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


async def ended_job(harness: JobHarness, callback: str) -> object:
    job = await harness.submit(
        "nano-banana/generate", {"prompt": "kite", "imageSize": "512", "callBackUrl": callback}
    )
    return await harness.run(job.id)


async def test_signed_delivery_retried_until_accepted(
    tmp_path: Path, receiver: tuple[WebhookReceiver, SafeFetcher]
) -> None:
    server, fetcher = receiver
    server.statuses = [503, 500, 200]
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    clock = Clock()
    sender = webhook_sender(harness, fetcher, clock=clock)
    job = await ended_job(harness, f"https://hooks.test:{server.port}/studio")
    await sender.enqueue(job)  # type: ignore[arg-type]
    await sender.enqueue(job)  # type: ignore[arg-type]  # recorded once
    for attempt in range(3):
        assert await sender.deliver_due() == 1
        clock.now += backoff(attempt)
    assert await sender.deliver_due() == 0
    [row] = await harness.engine.read(lambda conn: list(conn.execute(select(webhook_deliveries))))
    await harness.close()
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert len(server.received) == 3
    last = server.received[-1]
    message_id, timestamp = last.headers["webhook-id"], last.headers["webhook-timestamp"]
    expected = base64.b64encode(
        hmac.new(SECRET, f"{message_id}.{timestamp}.".encode() + last.body, hashlib.sha256).digest()
    ).decode()
    assert last.headers["webhook-signature"] == f"v1,{expected}"
    assert {r.headers["webhook-id"] for r in server.received} == {message_id}  # retries keep the id
    event = json.loads(last.body)
    assert event["type"] == "job.complete" and event["data"]["jobId"] == job.id  # type: ignore[attr-defined]
    assert event["data"]["result"]["imageUrl"].startswith("http://127.0.0.1:8402/blobs/")


async def test_gives_up_after_twelve_attempts_and_on_permanent_errors(
    tmp_path: Path, receiver: tuple[WebhookReceiver, SafeFetcher]
) -> None:
    server, fetcher = receiver
    harness = await JobHarness.open(tmp_path, {"preview": PreviewBackend(CATALOG)})
    clock = Clock()
    sender = webhook_sender(harness, fetcher, clock=clock)
    server.statuses = [503]
    await sender.enqueue(await ended_job(harness, f"https://hooks.test:{server.port}/a"))  # type: ignore[arg-type]
    for _ in range(MAX_ATTEMPTS + 2):
        await sender.deliver_due()
        clock.now += 400
    server.statuses = [410]
    await sender.enqueue(await ended_job(harness, f"https://hooks.test:{server.port}/b"))  # type: ignore[arg-type]
    await sender.deliver_due()
    rows = await harness.engine.read(
        lambda conn: {r.url.rsplit("/", 1)[1]: r for r in conn.execute(select(webhook_deliveries))}
    )
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
        await sender.enqueue(await ended_job(harness, target))  # type: ignore[arg-type]
    await sender.deliver_due()
    rows = await harness.engine.read(lambda conn: list(conn.execute(select(webhook_deliveries))))
    await harness.close()
    assert len(rows) == 4
    assert all(r.state == "failed" and r.last_error.startswith("address_not_allowed") for r in rows)
    assert await recorder.connections() == 0
    await recorder.stop()
