"""`studio402 worker`: runs the jobs procrastinate hands out (see jobs/queue.py for the protocol)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.job_context import AbortReason

from studio402.db.engine import Database
from studio402.jobs import queue
from studio402.jobs.model import Job

log = logging.getLogger(__name__)
_DEFAULT_TIMING = queue.QueueTiming()


class ClaimingStore(Protocol):
    async def claim_id(self, job_id: str, owner: str, lease_seconds: float, now: float) -> Job | None: ...
    async def release_leases(self, owner: str) -> None: ...


class Runner(Protocol):
    async def run(self, job: Job) -> Job | None: ...
    async def cancelled(self, job_id: str) -> None: ...


class QueueWorker:
    def __init__(
        self,
        db: Database,
        store: ClaimingStore,
        runner: Runner,
        *,
        owner: str,
        lease_seconds: float,
        concurrency: int,
        timing: queue.QueueTiming = _DEFAULT_TIMING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._store = store
        self._runner = runner
        self._owner = owner
        self._lease = lease_seconds
        self._concurrency = concurrency
        self._timing = timing
        self._clock = clock
        self.app = App(connector=PsycopgConnector(conninfo=queue.conninfo(db.url), min_size=1, max_size=4))
        self.app.task(name=queue.RUN_JOB, queue=queue.QUEUE, pass_context=True)(self._run_job)
        every = max(1, int(timing.sweep_every_seconds))
        sweep = self.app.task(name=queue.SWEEP, queue=queue.QUEUE, pass_context=False)(self._sweep_task)
        self.app.periodic(cron=f"*/{every} * * * * *", periodic_id="sweep")(sweep)

    async def run(self) -> None:
        """Work until cancelled (SIGTERM/SIGINT are the caller's: it cancels this coroutine)."""
        async with self.app.open_async():
            try:
                await self.app.run_worker_async(
                    queues=[queue.QUEUE],
                    name=self._owner,
                    concurrency=self._concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=self._timing.heartbeat_seconds,
                    stalled_worker_timeout=self._timing.stalled_seconds,
                    fetch_job_polling_interval=self._timing.poll_seconds,
                    abort_job_polling_interval=self._timing.poll_seconds,
                    shutdown_graceful_timeout=5.0,
                    delete_jobs="successful",
                )
            finally:
                await self._store.release_leases(self._owner)

    async def _run_job(self, context: JobContext, job_id: str) -> None:
        job = await self._store.claim_id(job_id, self._owner, self._lease, self._clock())
        if job is None:
            return  # ended, not paid yet, or leased by a live runner: the sweep re-enqueues if needed
        try:
            await self._runner.run(job)
        except asyncio.CancelledError:
            if context.abort_reason() is AbortReason.USER_REQUEST:
                await asyncio.shield(self._runner.cancelled(job_id))  # its owner canceled it
            raise  # on shutdown, release_leases hands the job back

    async def _sweep_task(self, timestamp: int) -> None:
        await self.sweep()

    async def sweep(self) -> dict[str, int]:
        """Retry the entries of dead workers, re-enqueue orphaned runnable jobs."""
        manager = self.app.job_manager
        stalled = list(
            await manager.get_stalled_jobs(
                queue=queue.QUEUE,
                task_name=queue.RUN_JOB,
                seconds_since_heartbeat=self._timing.stalled_seconds,
            )
        )
        for entry in stalled:
            await manager.retry_job(entry)
        now = self._clock()

        def requeue(conn: Any) -> int:
            return sum(queue.enqueue_if_idle(conn, jid) for jid in queue.orphans(conn, now))

        requeued = await self._db.write(requeue)
        if stalled or requeued:
            log.info("sweep: %d stalled entries retried, %d orphaned jobs enqueued", len(stalled), requeued)
        return {"stalled": len(stalled), "requeued": requeued}
