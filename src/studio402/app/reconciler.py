"""The reconciler: finishes what a crash or a flaky RPC interrupted, and sweeps expired files.

Each step runs whatever the others did: a failing one is logged and retried on the next pass."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from studio402.app.job_lifecycle import TerminalHooks
from studio402.config import StorageSettings
from studio402.media.store import UNPAID
from studio402.payments.engine import PaymentEngine
from studio402.payments.refunds import RefundService
from studio402.storage.base import BlobStore
from studio402.storage.uploads import INCOMING

log = logging.getLogger(__name__)
SWEEP_EVERY_SECONDS = 3600.0
INCOMING_RETENTION_DAYS = 1.0  # unconfirmed direct uploads (their presigned PUT lives an hour)
Step = Callable[[], Awaitable[object]]


class Reconciler:
    def __init__(
        self,
        engine: PaymentEngine,
        refunds: RefundService,
        hooks: TerminalHooks,
        blobs: BlobStore,
        storage: StorageSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.refunds = refunds
        self.hooks = hooks
        self._blobs = blobs
        self._storage = storage
        self.clock = clock
        self._last_sweep = 0.0

    def steps(self) -> list[tuple[str, Step]]:
        """Settlements left pending, refunds never started, refunds in flight (looked up on each pass)."""
        return [
            ("payments", self.engine.reconcile),
            ("refunds to start", self.hooks.start_missing_refunds),
            ("refunds in flight", self.refunds.reconcile),
        ]

    async def reconcile(self) -> list[str]:
        """One pass of every step; the names of the steps that failed."""
        return [name for name, step in self.steps() if not await _survived(name, step)]

    async def run_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.reconcile()
            await self.sweep_when_due()

    async def sweep_when_due(self, every: float = SWEEP_EVERY_SECONDS) -> None:
        if self.clock() - self._last_sweep <= every:
            return
        self._last_sweep = self.clock()
        try:
            await self.sweep_storage()
        except Exception:  # a full disk or a bucket outage must not kill the loop
            log.exception("storage sweep failed; will retry")

    def retention_days(self) -> list[tuple[str, float]]:
        """Each storage area with how long its files live (docs/storage.md); 0 keeps them forever."""
        storage = self._storage
        return [
            ("results", storage.result_retention_days),
            ("uploads", storage.upload_retention_days),
            ("media", storage.media_retention_days),
            (UNPAID, storage.unpaid_media_retention_hours / 24),
            (INCOMING, INCOMING_RETENTION_DAYS),
        ]

    async def sweep_storage(self) -> dict[str, int]:
        """Delete stored files past their retention; how many, per area."""
        removed = {}
        for area, days in self.retention_days():
            if days > 0:
                removed[area] = await self._blobs.sweep(area, self.clock() - days * 86_400)
        return removed


async def _survived(name: str, step: Step) -> bool:
    try:
        await step()
    except Exception:  # a flaky RPC or disk must not stop the other steps
        log.exception("reconciling %s failed; will retry", name)
        return False
    return True
