"""A paid job after its payment: polling and listing by its payer, cancel, delete, and the hooks of its end
(refund when it did not deliver, the webhook when it has a `callBackUrl`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from studio402.db.job_store import SqlJobStore
from studio402.errors import ConflictError, InputError, NotFound
from studio402.jobs.dispatch import Dispatcher
from studio402.jobs.events import JobEvents
from studio402.jobs.model import Job, JobStatus, is_refundable
from studio402.jobs.webhooks import WebhookSender
from studio402.payments.refunds import RefundRequest, RefundService

log = logging.getLogger(__name__)
JobView = Callable[[Job], dict[str, Any]]


class Republisher:
    """Publishes a job's current state again (its refund moved on): the refund service's `on_change`."""

    def __init__(self, jobs: SqlJobStore, events: JobEvents) -> None:
        self._jobs = jobs
        self._events = events

    async def __call__(self, job_id: str) -> None:
        job = await self._jobs.get(job_id)
        if job is not None:
            self._events.publish(job)


class TerminalHooks:
    """What happens once a job ends: a refund when it did not deliver, then its webhook."""

    def __init__(self, jobs: SqlJobStore, refunds: RefundService, webhooks: WebhookSender) -> None:
        self._jobs = jobs
        self._refunds = refunds
        self._webhooks = webhooks

    async def on_terminal(self, job: Job) -> None:
        if is_refundable(job):
            await self.refund(job)
        if job.callback_url:
            await self._webhooks.enqueue(await self._jobs.get(job.id) or job)

    async def refund(self, job: Job) -> None:
        if job.payment_id is None:
            return
        try:
            await self._refunds.refund(RefundRequest(job.id, job.payment_id, job.payer, job.micros))
        except Exception:  # the reconciler retries from needing_refund()
            log.exception("refund of job %s failed; will retry", job.id)

    async def start_missing_refunds(self) -> None:
        """Refunds a crash left unstarted (a reconcile step)."""
        for job in await self._jobs.needing_refund():
            await self.refund(job)


class JobLifecycle:
    """The job API's use cases. A wallet sees only its own jobs: another's is a 404 like a missing one."""

    def __init__(
        self,
        jobs: SqlJobStore,
        events: JobEvents,
        hooks: TerminalHooks,
        dispatcher: Dispatcher,
        view: JobView,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view  # the public shape of a job (result URLs signed afresh)
        self._jobs = jobs
        self._events = events
        self._hooks = hooks
        self._dispatcher = dispatcher
        self.clock = clock

    async def get_own(self, payer: str, job_id: str) -> Job:
        job = await self._jobs.get_for(payer, job_id)
        if job is None:
            raise NotFound(f"no job {job_id} for this wallet")
        return job

    async def list_own(
        self, payer: str, *, status: str | None, limit: int, before: float | None
    ) -> list[Job]:
        """The payer's jobs, newest first, created before the `before` cursor."""
        wanted = _status(status) if status else None
        return await self._jobs.list_for(payer, status=wanted, limit=limit, before=before)

    async def delete_failed(self, job: Job) -> None:
        if job.status is not JobStatus.FAILED or not await self._jobs.hide(job.id, self.clock()):
            raise ConflictError("only failed jobs can be deleted", code="job_not_failed")

    async def cancel(self, job: Job) -> Job:
        """Cancel a job that has not ended; refunded when it had not started."""
        canceled = await self._jobs.cancel(job.id, self.clock())
        if canceled is None:
            raise ConflictError(
                f"the job is {job.status.value} and cannot be canceled", code="job_not_cancelable"
            )
        self._events.publish(canceled)  # a local worker running it stops and cancels it upstream
        await self._dispatcher.canceled(job.id)  # ... and one elsewhere, through the dispatcher
        await self._hooks.on_terminal(canceled)
        return await self._jobs.get(job.id) or canceled

    async def latest(self, job: Job) -> Job:
        """The job as stored now (other processes' changes only show in the database)."""
        return await self._jobs.get(job.id) or job

    @asynccontextmanager
    async def changes(self, job: Job) -> AsyncIterator[asyncio.Queue[Job]]:
        """This process's changes of `job`, as a queue (subscribe before reading `latest`)."""
        async with self._events.subscribe(job.id) as queue:
            yield queue


def _status(status: str) -> JobStatus:
    try:
        return JobStatus(status)
    except ValueError:
        raise InputError(
            f"status must be one of {', '.join(s.value for s in JobStatus)}", code="invalid_status"
        ) from None
