"""Webhooks: when a job with a `callBackUrl` ends, POST its final state there, signed Standard-Webhooks style
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`)
with the job's own secret (made with the job, shown once in the answer that paid for it), so a receiver can
never sign another job's deliveries. Retried with backoff up to 12 times (as cog does) and recorded. Targets
go through the SSRF rules of media fetching (https only, no private or metadata addresses, connection pinned
to the checked address); at most 64 KiB of an answer is read."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from studio402.errors import MediaError
from studio402.jobs.deliveries import AttemptResult, DeliveryState, DueDelivery, NewDelivery
from studio402.jobs.model import Job
from studio402.payments.ledger import new_id

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def backoff(attempt: int) -> float:
    """Seconds before attempt number `attempt + 1`: 0.5, 1, 2, ... capped at 5 minutes (~18 min in all)."""
    return float(min(300.0, 0.5 * 2**attempt))


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (Standard Webhooks: the bytes after the prefix)."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class WebhookStore(Protocol):
    async def record(self, delivery: NewDelivery) -> bool:
        """Insert a pending delivery due now; False when this job's event is already recorded."""
        ...

    async def due(self, now: float, limit: int) -> list[DueDelivery]: ...

    async def attempted(self, delivery: DueDelivery, result: AttemptResult) -> bool:
        """Record an attempt (compare-and-set on the delivery as read); False when another sender did."""
        ...


class WebhookSender:
    def __init__(
        self,
        store: WebhookStore,
        poster: Poster,
        *,
        view: Callable[[Job], dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._poster = poster
        self._view = view
        self._clock = clock
        self._wake = asyncio.Event()

    async def enqueue(self, job: Job) -> None:
        """Record the terminal event of a job that asked for a webhook (once per job)."""
        if not job.callback_url or not job.status.is_terminal:
            return
        now = self._clock()
        event = f"job.{job.status.value}"
        payload = json.dumps(
            {"type": event, "timestamp": now, "data": self._view(job)}, separators=(",", ":")
        )
        await self._store.record(NewDelivery(new_id("msg"), job.id, event, job.callback_url, payload, now))
        self._wake.set()  # recorded now or before: either way it is due

    async def run_forever(self, idle: float = 1.0) -> None:
        while True:
            try:
                sent = await self.deliver_due()
            except Exception:
                log.exception("webhook delivery pass failed")
                sent = 0
            if not sent:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle)

    async def deliver_due(self) -> int:
        due = await self._store.due(self._clock(), 20)
        await asyncio.gather(*(self._attempt(d) for d in due))
        return len(due)

    def _signed_headers(self, delivery: DueDelivery, secret: str, body: bytes) -> dict[str, str]:
        timestamp = int(self._clock())
        return {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(signing_key(secret), delivery.id, timestamp, body),
        }

    async def _attempt(self, delivery: DueDelivery) -> None:
        status, error, refused = await self._post(delivery)
        attempts = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            state = DeliveryState.DELIVERED
        elif refused or (status is not None and status not in RETRY_STATUSES) or attempts >= MAX_ATTEMPTS:
            state = DeliveryState.FAILED
        else:
            state = DeliveryState.PENDING
        now = self._clock()
        result = AttemptResult(state, attempts, status, error, now + backoff(attempts - 1), now)
        await self._store.attempted(delivery, result)

    async def _post(self, delivery: DueDelivery) -> tuple[int | None, str | None, bool]:
        """(HTTP status, error, refused for good) of one POST."""
        # A job without its own secret (never made by the engine): no receiver could verify it.
        if delivery.webhook_secret is None:
            return None, "webhook_secret_missing: the job has no webhook secret", True
        body = delivery.payload.encode()
        try:
            headers = self._signed_headers(delivery, delivery.webhook_secret, body)
            return await self._poster.post(delivery.url, body, headers), None, False
        except MediaError as exc:
            refused = exc.code.startswith(("address_not_allowed", "url_", "dns_failed"))
            return None, f"{exc.code}: {exc.detail}", refused
