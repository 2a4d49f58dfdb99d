"""The in-process worker pool of the embedded default, a `Dispatcher` (jobs/dispatch.py): N asyncio workers
claim runnable jobs from the store (leases + heartbeats), so a job abandoned by a crash or a restart is
picked up again once its lease ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection

from studio402.db.job_store import SqlJobStore
from studio402.jobs.model import Job, JobStatus
from studio402.jobs.runner import JobRunner

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(
        self,
        store: SqlJobStore,
        runner: JobRunner,
        *,
        workers: int,
        owner: str,
        lease_seconds: float,
        idle_poll: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._runner = runner
        self._workers = workers
        self._owner = owner
        self._lease = lease_seconds
        self._idle_poll = idle_poll
        self._clock = clock
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[Job | None]] = {}
        self._stopping = False

    def on_runnable(self, conn: Connection, job_id: str) -> None:
        return None  # the workers claim from the store: nothing to enqueue

    def wake(self, job_id: str | None = None) -> None:
        """A job became runnable (paid, settled, or resumed): a worker should look now."""
        self._wake.set()

    async def canceled(self, job_id: str) -> None:
        return None  # on_event already stopped it, when it runs here

    def on_event(self, job: Job) -> None:
        """Stop working on a job its owner canceled (the runner then cancels it upstream)."""
        if job.status is JobStatus.CANCELED and job.id in self._running:
            self._running[job.id].cancel()

    async def start(self) -> None:
        for i in range(self._workers):
            self._loops.append(asyncio.create_task(self._loop(), name=f"job-worker-{i}"))
        self.wake()

    async def stop(self) -> None:
        """Stop claiming, interrupt running jobs (their leases are released for the next start)."""
        self._stopping = True
        self._wake.set()
        for task in list(self._running.values()):
            task.cancel()
        if self._loops:
            _, late = await asyncio.wait(self._loops, timeout=10)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        await self._store.release_leases(self._owner)

    async def _loop(self) -> None:
        while not self._stopping:
            job = await self._claim()
            if self._stopping:
                return  # a job claimed just now keeps its lease until stop() releases it
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)
                continue
            task = asyncio.create_task(self._runner.run(job), name=f"job-{job.id}")
            self._running[job.id] = task
            try:
                await task
            except asyncio.CancelledError:
                if self._stopping:
                    return  # the lease is released by stop()
                await self._runner.cancelled(job.id)  # its owner canceled it
            except Exception:
                log.exception(
                    "job %s crashed its worker; its lease will expire and it will run again", job.id
                )
            finally:
                self._running.pop(job.id, None)

    async def _claim(self) -> Job | None:
        try:
            return await self._store.claim(self._owner, self._lease, self._clock())
        except Exception:
            log.exception("claiming a job failed; retrying")
            await asyncio.sleep(self._idle_poll)
            return None
