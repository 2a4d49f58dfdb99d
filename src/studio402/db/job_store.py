"""The job store on SQLAlchemy Core: the source of truth for every job. Status changes are compare-and-set
updates, so a worker whose lease expired can never overwrite the worker that took the job over."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update

from studio402.db.engine import Database
from studio402.db.schema import jobs, payments, refunds
from studio402.db.transitions import may_move
from studio402.jobs.model import JOB_TRANSITIONS, Job, JobStatus, job_from_row
from studio402.money import account_key
from studio402.payments.ledger import PaymentState

c = jobs.c
# The poll path, built once (compiled once): a wallet's own, not deleted, job.
_OWN_JOB = select(jobs).where(c.id == bindparam("id"), c.payer == bindparam("payer"), c.deleted.is_(False))


_BY_ID = select(jobs).where(c.id == bindparam("id"))
_RUNNABLE = and_(
    may_move(c.status, JOB_TRANSITIONS, JobStatus.LOADING),  # a new claim or a lapsed lease taken over
    c.held.is_(False),
    or_(c.lease_expires.is_(None), c.lease_expires < bindparam("now")),
)
# PostgreSQL: a row another worker is claiming right now is skipped, not waited for (waiting, every loser
# of the race then found the row taken and, after a few rounds, reported "nothing to do" with jobs queued).
# SQLite has one writer at a time and renders no FOR UPDATE.
_NEXT_RUNNABLE = (
    select(c.id).where(_RUNNABLE).order_by(c.created_at).limit(1).with_for_update(skip_locked=True)
)
_TAKE = (
    update(jobs)
    .where(c.id == bindparam("jid"), _RUNNABLE)
    .values(
        status=JobStatus.LOADING.value,
        lease_owner=bindparam("owner"),
        lease_expires=bindparam("until"),
        attempts=c.attempts + 1,
        started_at=func.coalesce(c.started_at, bindparam("now")),
        updated_at=bindparam("now"),
    )
)


def _job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(_BY_ID, {"id": job_id}).first()
    return job_from_row(row._mapping) if row is not None else None


class SqlJobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, job_id: str) -> Job | None:
        return await self.db.read(lambda conn: _job(conn, job_id))

    async def get_for(self, payer: str, job_id: str) -> Job | None:
        """The job if `payer` paid for it (and has not deleted it); None otherwise, whichever the reason."""
        row = await self.db.fetch_one(_OWN_JOB, {"id": job_id, "payer": account_key(payer)})
        return job_from_row(row) if row is not None else None

    async def list_for(
        self, payer: str, *, status: JobStatus | None, limit: int, before: float | None
    ) -> list[Job]:
        where = [c.payer == account_key(payer), c.deleted.is_(False)]
        if status is not None:
            where.append(c.status == status.value)
        if before is not None:
            where.append(c.created_at < before)
        query = select(jobs).where(*where).order_by(c.created_at.desc()).limit(limit)
        return await self.db.read(lambda conn: [job_from_row(r._mapping) for r in conn.execute(query)])

    async def claim(self, owner: str, lease_seconds: float, now: float) -> Job | None:
        """Take the oldest runnable job: paid (not held), not terminal, lease free or expired."""

        def op(conn: Connection) -> Job | None:
            for _ in range(5):
                job_id = conn.scalar(_NEXT_RUNNABLE, {"now": now})
                if job_id is None:
                    return None
                taken = conn.execute(
                    _TAKE, {"jid": job_id, "now": now, "owner": owner, "until": now + lease_seconds}
                )
                if taken.rowcount:
                    return _job(conn, job_id)
            return None

        return await self.db.write(op)

    async def claim_id(self, job_id: str, owner: str, lease_seconds: float, now: float) -> Job | None:
        """Take this job if it is runnable (a queue worker was handed its id); None if it is not."""

        def op(conn: Connection) -> Job | None:
            taken = conn.execute(
                _TAKE, {"jid": job_id, "now": now, "owner": owner, "until": now + lease_seconds}
            )
            return _job(conn, job_id) if taken.rowcount else None

        return await self.db.write(op)

    async def _set(self, job_id: str, where: Sequence[Any], **values: Any) -> Job | None:
        """Compare-and-set: apply `values` if the job still matches `where`; the updated job or None."""

        def op(conn: Connection) -> Job | None:
            if not conn.execute(update(jobs).where(c.id == job_id, *where).values(**values)).rowcount:
                return None
            return _job(conn, job_id)

        return await self.db.write(op)

    def _owned(self, owner: str) -> list[Any]:
        return [c.lease_owner == owner, c.status == JobStatus.LOADING.value]

    def _moving(self, target: JobStatus, owner: str | None = None) -> list[Any]:
        """A status change's compare-and-set: the table allows it, and (for a worker) the lease is its own
        (a lease owner is set only while a job is loading)."""
        where = [may_move(c.status, JOB_TRANSITIONS, target)]
        return where if owner is None else [*where, c.lease_owner == owner]

    async def heartbeat(self, job_id: str, owner: str, lease_seconds: float, now: float) -> bool:
        return await self._set(job_id, self._owned(owner), lease_expires=now + lease_seconds) is not None

    async def set_upstream(
        self, job_id: str, owner: str, backend: str, upstream_id: str | None, now: float
    ) -> Job | None:
        return await self._set(
            job_id, self._owned(owner), backend=backend, upstream_id=upstream_id, updated_at=now
        )

    async def set_progress(self, job_id: str, owner: str, progress: int, now: float) -> Job | None:
        return await self._set(
            job_id, self._owned(owner), progress=max(0, min(100, progress)), updated_at=now
        )

    async def complete(self, job_id: str, owner: str, result: dict[str, Any], now: float) -> Job | None:
        return await self._set(
            job_id,
            self._moving(JobStatus.COMPLETE, owner),
            status=JobStatus.COMPLETE.value,
            progress=100,
            result=json.dumps(result),
            lease_owner=None,
            lease_expires=None,
            updated_at=now,
            finished_at=now,
        )

    async def fail(
        self, job_id: str, code: str, message: str, now: float, *, owner: str | None = None
    ) -> Job | None:
        where = self._moving(JobStatus.FAILED, owner)
        return await self._set(
            job_id,
            where,
            status=JobStatus.FAILED.value,
            error_code=code,
            error_message=message,
            lease_owner=None,
            lease_expires=None,
            updated_at=now,
            finished_at=now,
        )

    async def cancel(self, job_id: str, now: float) -> Job | None:
        return await self._set(
            job_id,
            [*self._moving(JobStatus.CANCELED), c.held.is_(False)],
            status=JobStatus.CANCELED.value,
            error_code="canceled",
            error_message="canceled by its owner",
            lease_owner=None,
            lease_expires=None,
            updated_at=now,
            finished_at=now,
        )

    async def hide(self, job_id: str, now: float) -> bool:
        """Soft-delete a failed job (the row stays for the ledger audit)."""
        return (
            await self._set(job_id, [c.status == JobStatus.FAILED.value], deleted=True, updated_at=now)
            is not None
        )

    async def release_leases(self, owner: str) -> None:
        """A stopping worker hands its unfinished jobs back at once (no waiting for the leases to lapse)."""
        await self.db.write(
            lambda conn: conn.execute(update(jobs).where(*self._owned(owner)).values(lease_expires=0.0))
        )

    async def needing_refund(self) -> list[Job]:
        """Ended jobs that were charged and should be refunded but have no refund yet (crash recovery)."""
        refundable = or_(
            and_(c.status == JobStatus.FAILED.value, c.error_code != "payment_failed"),
            and_(c.status == JobStatus.CANCELED.value, c.started_at.is_(None)),
        )
        settled = exists().where(
            payments.c.id == c.payment_id, payments.c.state == PaymentState.SETTLED.value
        )
        no_refund = ~exists().where(refunds.c.job_id == c.id)
        query = select(jobs).where(refundable, settled, no_refund)
        return await self.db.read(lambda conn: [job_from_row(r._mapping) for r in conn.execute(query)])

    async def statuses(self) -> dict[str, str]:
        return await self.db.read(lambda conn: {r.id: r.status for r in conn.execute(select(c.id, c.status))})
