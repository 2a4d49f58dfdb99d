"""The job store on SQLAlchemy Core: the source of truth for every job. Status changes are compare-and-set
updates, so a worker whose lease expired can never overwrite the worker that took the job over."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from studio402.db.schema import jobs, payments, refunds
from studio402.jobs.model import Job, JobStatus, allowed_sources, job_from_row
from studio402.payments.ledger import PaymentState

c = jobs.c


class SqlJobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, job_id: str) -> Job | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(c.id == job_id))).first()
        return job_from_row(row._mapping) if row is not None else None

    async def get_for(self, payer: str, job_id: str) -> Job | None:
        """The job if `payer` paid for it (and has not deleted it); None otherwise, whichever the reason."""
        job = await self.get(job_id)
        if job is None or job.payer != payer.lower() or await self._deleted(job_id):
            return None
        return job

    async def _deleted(self, job_id: str) -> bool:
        async with self._engine.connect() as conn:
            return bool(await conn.scalar(select(c.deleted).where(c.id == job_id)))

    async def list_for(self, payer: str, *, status: JobStatus | None, limit: int, before: float | None) -> list[Job]:
        where = [c.payer == payer.lower(), c.deleted.is_(False)]
        if status is not None:
            where.append(c.status == status.value)
        if before is not None:
            where.append(c.created_at < before)
        query = select(jobs).where(*where).order_by(c.created_at.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [job_from_row(r._mapping) for r in await conn.execute(query)]

    async def claim(self, owner: str, lease_seconds: float, now: float) -> Job | None:
        """Take the oldest runnable job: paid (not held), not terminal, lease free or expired."""
        runnable = and_(
            c.status.in_((JobStatus.PENDING.value, JobStatus.LOADING.value)),
            c.held.is_(False),
            or_(c.lease_expires.is_(None), c.lease_expires < now),
        )
        async with self._engine.begin() as conn:
            for _ in range(5):
                job_id = await conn.scalar(select(c.id).where(runnable).order_by(c.created_at).limit(1))
                if job_id is None:
                    return None
                taken = await conn.execute(update(jobs).where(and_(c.id == job_id, runnable)).values(
                    status=JobStatus.LOADING.value, lease_owner=owner, lease_expires=now + lease_seconds,
                    attempts=c.attempts + 1, started_at=func.coalesce(c.started_at, now), updated_at=now))
                if taken.rowcount:
                    row = (await conn.execute(select(jobs).where(c.id == job_id))).first()
                    assert row is not None
                    return job_from_row(row._mapping)
        return None

    async def _set(self, job_id: str, where: Sequence[Any], **values: Any) -> Job | None:
        """Compare-and-set: apply `values` if the job still matches `where`; the updated job or None."""
        async with self._engine.begin() as conn:
            result = await conn.execute(update(jobs).where(c.id == job_id, *where).values(**values))
            if not result.rowcount:
                return None
            row = (await conn.execute(select(jobs).where(c.id == job_id))).first()
        assert row is not None
        return job_from_row(row._mapping)

    def _owned(self, owner: str) -> list[Any]:
        return [c.lease_owner == owner, c.status == JobStatus.LOADING.value]

    async def heartbeat(self, job_id: str, owner: str, lease_seconds: float, now: float) -> bool:
        return await self._set(job_id, self._owned(owner), lease_expires=now + lease_seconds) is not None

    async def set_upstream(self, job_id: str, owner: str, backend: str, upstream_id: str | None,
                           now: float) -> Job | None:
        return await self._set(job_id, self._owned(owner), backend=backend, upstream_id=upstream_id,
                               updated_at=now)

    async def set_progress(self, job_id: str, owner: str, progress: int, now: float) -> Job | None:
        return await self._set(job_id, self._owned(owner), progress=max(0, min(100, progress)), updated_at=now)

    async def complete(self, job_id: str, owner: str, result: dict[str, Any], now: float) -> Job | None:
        return await self._set(job_id, self._owned(owner), status=JobStatus.COMPLETE.value, progress=100,
                               result=json.dumps(result), lease_owner=None, lease_expires=None, updated_at=now,
                               finished_at=now)

    async def fail(self, job_id: str, code: str, message: str, now: float, *, owner: str | None = None
                   ) -> Job | None:
        where = self._owned(owner) if owner else [c.status.in_(allowed_sources(JobStatus.FAILED))]
        return await self._set(job_id, where, status=JobStatus.FAILED.value, error_code=code,
                               error_message=message, lease_owner=None, lease_expires=None, updated_at=now,
                               finished_at=now)

    async def cancel(self, job_id: str, now: float) -> Job | None:
        return await self._set(job_id, [c.status.in_(allowed_sources(JobStatus.CANCELED)), c.held.is_(False)],
                               status=JobStatus.CANCELED.value, error_code="canceled",
                               error_message="canceled by its owner", lease_owner=None, lease_expires=None,
                               updated_at=now, finished_at=now)

    async def hide(self, job_id: str, now: float) -> bool:
        """Soft-delete a failed job (the row stays for the ledger audit)."""
        return await self._set(job_id, [c.status == JobStatus.FAILED.value], deleted=True,
                               updated_at=now) is not None

    async def needing_refund(self) -> list[Job]:
        """Ended jobs that were charged and should be refunded but have no refund yet (crash recovery)."""
        refundable = or_(
            and_(c.status == JobStatus.FAILED.value, c.error_code != "payment_failed"),
            and_(c.status == JobStatus.CANCELED.value, c.started_at.is_(None)),
        )
        settled = exists().where(payments.c.id == c.payment_id, payments.c.state == PaymentState.SETTLED.value)
        no_refund = ~exists().where(refunds.c.job_id == c.id)
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(jobs).where(refundable, settled, no_refund))
            return [job_from_row(r._mapping) for r in rows]

    async def statuses(self) -> dict[str, str]:
        async with self._engine.connect() as conn:
            return {r.id: r.status for r in await conn.execute(select(c.id, c.status))}
