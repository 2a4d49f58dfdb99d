"""The seam between "a job became runnable" and whoever runs it.

Two implementations: the in-process `WorkerPool` of the embedded default (SQLite), and `QueueDispatcher`
for the scale-out layout, where `studio402 worker` processes take jobs from the procrastinate queue on
PostgreSQL. The composition root picks one; nothing else knows which."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from studio402.db.engine import Database
from studio402.jobs import queue
from studio402.jobs.model import Job


class Dispatcher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def on_runnable(self, conn: Connection, job_id: str) -> None:
        """Inside the transaction that makes `job_id` runnable (a settled payment, a credit spend)."""

    def wake(self, job_id: str | None = None) -> None:
        """After that transaction committed: run it soon."""

    def on_event(self, job: Job) -> None:
        """Every job change published in this process (a local runner stops a job canceled here)."""

    async def canceled(self, job_id: str) -> None:
        """The job was canceled: stop it wherever it runs."""


class QueueDispatcher:
    """Scale-out: jobs are enqueued with the transaction that makes them runnable, and run by `studio402
    worker` processes; a cancel aborts the job's queue entries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def on_runnable(self, conn: Connection, job_id: str) -> None:
        queue.enqueue_in(conn, job_id)

    def wake(self, job_id: str | None = None) -> None:
        return None  # the queue's LISTEN/NOTIFY wakes the workers

    def on_event(self, job: Job) -> None:
        return None

    async def canceled(self, job_id: str) -> None:
        await self._db.write(lambda conn: queue.abort_in(conn, job_id))
