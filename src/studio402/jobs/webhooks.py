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

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from studio402.db.engine import Database
from studio402.db.schema import jobs
from studio402.db.schema import webhook_deliveries as wd
from studio402.errors import MediaError
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


class WebhookSender:
    def __init__(
        self,
        db: Database,
        poster: Poster,
        *,
        view: Callable[[Job], dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
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
        row = {
            "id": new_id("msg"),
            "job_id": job.id,
            "event": event,
            "url": job.callback_url,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "next_at": now,
            "created_at": now,
            "updated_at": now,
        }
        with contextlib.suppress(IntegrityError):  # already recorded
            await self._db.write(lambda conn: conn.execute(insert(wd).values(row)))
        self._wake.set()

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
        now = self._clock()
        due = (
            select(wd, jobs.c.webhook_secret)
            .select_from(wd.outerjoin(jobs, jobs.c.id == wd.c.job_id))
            .where(and_(wd.c.state == "pending", wd.c.next_at <= now))
            .order_by(wd.c.next_at)
            .limit(20)
        )
        rows = await self._db.read(lambda conn: [dict(r._mapping) for r in conn.execute(due)])
        await asyncio.gather(*(self._attempt(r) for r in rows))
        return len(rows)

    def _signed_headers(self, row: Mapping[str, Any], body: bytes) -> dict[str, str]:
        timestamp = int(self._clock())
        return {
            "content-type": "application/json",
            "webhook-id": row["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(signing_key(row["webhook_secret"]), row["id"], timestamp, body),
        }

    async def _attempt(self, row: Mapping[str, Any]) -> None:
        status: int | None = None
        error: str | None = None
        # A job without its own secret (never made by the engine): no receiver could verify it.
        refused = row["webhook_secret"] is None
        if refused:
            error = "webhook_secret_missing: the job has no webhook secret"
        else:
            body = row["payload"].encode()
            try:
                status = await self._poster.post(row["url"], body, self._signed_headers(row, body))
            except MediaError as exc:
                error = f"{exc.code}: {exc.detail}"
                refused = exc.code.startswith(("address_not_allowed", "url_", "dns_failed"))
        attempts = row["attempts"] + 1
        if status is not None and 200 <= status < 300:
            state = "delivered"
        elif refused or (status is not None and status not in RETRY_STATUSES) or attempts >= MAX_ATTEMPTS:
            state = "failed"
        else:
            state = "pending"
        values = {
            "state": state,
            "attempts": attempts,
            "last_status": status,
            "last_error": error,
            "next_at": self._clock() + backoff(attempts - 1),
            "updated_at": self._clock(),
        }
        await self._db.write(
            lambda conn: conn.execute(update(wd).where(wd.c.id == row["id"]).values(**values))
        )
