"""The ledger port on SQLAlchemy Core: payments, held jobs, credits. Every method is one short transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from studio402 import failpoints
from studio402.db.engine import Database
from studio402.db.schema import credit_entries, credits, jobs, payments
from studio402.db.transitions import may_move
from studio402.jobs.model import JOB_TRANSITIONS, JobStatus
from studio402.payments.ledger import (
    PAYMENT_TRANSITIONS,
    NewJob,
    PaymentKey,
    PaymentRecord,
    PaymentState,
)


def payment_from_row(row: Any) -> PaymentRecord:
    m = row._mapping
    return PaymentRecord(
        id=m["id"],
        key=PaymentKey(m["network"], m["payer"], m["nonce"]),
        fingerprint=m["fingerprint"],
        route=m["route"],
        micros=m["micros"],
        state=PaymentState(m["state"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        client_id=m["client_id"],
        asset=m["asset"],
        amount=int(m["amount"]) if m["amount"] is not None else None,
        pay_to=m["pay_to"],
        valid_before=m["valid_before"],
        tx_hash=m["tx_hash"],
        raw_tx=m["raw_tx"],
        reason=m["reason"],
        payload=m["payload"],
        job_id=m["job_id"],
    )


def _row(record: PaymentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "network": record.key.network,
        "payer": record.key.payer,
        "nonce": record.key.nonce,
        "client_id": record.client_id,
        "fingerprint": record.fingerprint,
        "route": record.route,
        "micros": record.micros,
        "asset": record.asset,
        "amount": str(record.amount) if record.amount is not None else None,
        "pay_to": record.pay_to,
        "valid_before": record.valid_before,
        "state": record.state.value,
        "tx_hash": record.tx_hash,
        "raw_tx": record.raw_tx,
        "reason": record.reason,
        "payload": record.payload,
        "job_id": record.job_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def job_row(job: NewJob, *, held: bool, payment_id: str | None, now: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "payer": job.payer,
        "model": job.model,
        "operation": job.operation,
        "request": job.request,
        "fingerprint": job.fingerprint,
        "status": JobStatus(job.status).value,
        "result": job.result,
        "finished_at": now if JobStatus(job.status) is JobStatus.COMPLETE else None,
        "held": held,
        "deleted": False,
        "payment_id": payment_id,
        "micros": job.micros,
        "progress": 0,
        "attempts": 0,
        "callback_url": job.callback_url,
        "webhook_secret": job.webhook_secret,
        "created_at": now,
        "updated_at": now,
    }


# Hot-path statements are built once with bind parameters: SQLAlchemy then reuses their compiled form
# instead of building and caching a new statement on every paid request.
_p = payments.c
_BY_KEY = select(payments).where(
    _p.network == bindparam("n"), _p.payer == bindparam("p"), _p.nonce == bindparam("k")
)
_BY_ID = select(payments).where(_p.id == bindparam("pid"))
_INSERT_PAYMENT = insert(payments)
_INSERT_JOB = insert(jobs)
_TO_SETTLING = (
    update(payments)
    .where(_p.id == bindparam("pid"), may_move(_p.state, PAYMENT_TRANSITIONS, PaymentState.SETTLING))
    .values(
        state=PaymentState.SETTLING.value,
        tx_hash=bindparam("tx"),
        raw_tx=bindparam("raw"),
        job_id=bindparam("job"),
        updated_at=bindparam("now"),
    )
)
_TO_SETTLED = (
    update(payments)
    .where(_p.id == bindparam("pid"), may_move(_p.state, PAYMENT_TRANSITIONS, PaymentState.SETTLED))
    .values(state=PaymentState.SETTLED.value, tx_hash=bindparam("tx"), updated_at=bindparam("now"))
)
_RELEASE_JOB = (
    update(jobs).where(jobs.c.payment_id == bindparam("pid")).values(held=False, updated_at=bindparam("now"))
)


_JOBS_OF_PAYMENT = select(jobs.c.id).where(
    jobs.c.payment_id == bindparam("pid"), jobs.c.status == JobStatus.PENDING.value
)
_BY_CLIENT_ID = select(payments).where(_p.payer == bindparam("p"), _p.client_id == bindparam("cid"))


def _first(conn: Connection, statement: Any, params: dict[str, Any]) -> PaymentRecord | None:
    row = conn.execute(statement, params).first()
    return payment_from_row(row) if row is not None else None


def _move(conn: Connection, payment_id: str, target: PaymentState, **values: Any) -> bool:
    """Compare-and-set to `target` from any state the transition table allows."""
    moved = (
        update(payments)
        .where(_p.id == payment_id, may_move(_p.state, PAYMENT_TRANSITIONS, target))
        .values(state=target.value, **values)
    )
    return bool(conn.execute(moved).rowcount)


# Called inside the transaction that makes a job runnable (scale-out: enqueue it there, jobs/queue.py).
OnRunnable = Callable[[Connection, str], None]


def no_hook(conn: Connection, job_id: str) -> None:
    return None


class SqlLedgerStore:
    def __init__(self, db: Database, *, on_runnable: OnRunnable = no_hook) -> None:
        self._db = db
        self._on_runnable = on_runnable

    async def get(self, key: PaymentKey) -> PaymentRecord | None:
        params = {"n": key.network, "p": key.payer, "k": key.nonce}
        return await self._db.read(lambda conn: _first(conn, _BY_KEY, params))

    async def get_by_id(self, payment_id: str) -> PaymentRecord | None:
        return await self._db.read(lambda conn: _first(conn, _BY_ID, {"pid": payment_id}))

    async def get_by_client_id(self, payer: str, client_id: str) -> PaymentRecord | None:
        return await self._db.read(lambda conn: _first(conn, _BY_CLIENT_ID, {"p": payer, "cid": client_id}))

    async def reserve(self, record: PaymentRecord) -> bool:
        try:
            await self._db.write(lambda conn: conn.execute(_INSERT_PAYMENT, _row(record)))
        except IntegrityError:
            return False
        failpoints.hit("after_reserve")
        return True

    async def reopen(self, payment_id: str, now: float) -> bool:
        return await self._db.write(
            lambda conn: _move(
                conn,
                payment_id,
                PaymentState.RESERVED,
                reason=None,
                tx_hash=None,
                raw_tx=None,
                updated_at=now,
            )
        )

    async def begin_settlement(
        self, payment_id: str, tx_hash: str | None, raw_tx: str | None, job: NewJob, now: float
    ) -> None:
        def op(conn: Connection) -> None:
            moved = conn.execute(
                _TO_SETTLING, {"pid": payment_id, "tx": tx_hash, "raw": raw_tx, "job": job.id, "now": now}
            )
            if not moved.rowcount:
                raise AssertionError(f"payment {payment_id} is not reserved")
            conn.execute(_INSERT_JOB, job_row(job, held=True, payment_id=payment_id, now=now))

        await self._db.write(op)
        failpoints.hit("after_job_insert")

    async def replace_settlement_tx(
        self, payment_id: str, previous: str | None, tx_hash: str, raw_tx: str, now: float
    ) -> bool:
        same_tx = _p.tx_hash.is_(None) if previous is None else _p.tx_hash == previous
        still_settling = and_(_p.id == payment_id, _p.state == PaymentState.SETTLING.value, same_tx)
        replaced = (
            update(payments).where(still_settling).values(tx_hash=tx_hash, raw_tx=raw_tx, updated_at=now)
        )
        return bool(await self._db.write(lambda conn: conn.execute(replaced).rowcount))

    async def finish_settlement(self, payment_id: str, tx_hash: str | None, now: float) -> None:
        def op(conn: Connection) -> None:
            known = tx_hash
            if known is None:
                current = conn.execute(_BY_ID, {"pid": payment_id}).first()
                known = current.tx_hash if current is not None else None
            if not conn.execute(_TO_SETTLED, {"pid": payment_id, "tx": known, "now": now}).rowcount:
                return  # already settled by a concurrent reconciler: nothing to do
            conn.execute(_RELEASE_JOB, {"pid": payment_id, "now": now})
            for job_id in conn.scalars(_JOBS_OF_PAYMENT, {"pid": payment_id}):
                self._on_runnable(conn, job_id)

        await self._db.write(op)

    async def fail(self, payment_id: str, reason: str, now: float, *, keep_job: bool = False) -> None:
        values: dict[str, Any] = {"reason": reason, "updated_at": now}
        if not keep_job:
            values["job_id"] = None

        def op(conn: Connection) -> None:
            _move(conn, payment_id, PaymentState.FAILED, **values)
            held = and_(jobs.c.payment_id == payment_id, jobs.c.held.is_(True))
            if keep_job:
                conn.execute(
                    update(jobs)
                    .where(held, may_move(jobs.c.status, JOB_TRANSITIONS, JobStatus.FAILED))
                    .values(
                        held=False,
                        status=JobStatus.FAILED.value,
                        error_code="payment_failed",
                        error_message=f"the payment did not settle ({reason}); nothing was charged",
                        updated_at=now,
                        finished_at=now,
                    )
                )
            else:
                conn.execute(delete(jobs).where(held))

        await self._db.write(op)

    async def release_client_id(self, payment_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                update(payments)
                .where(_p.id == payment_id, _p.state == PaymentState.FAILED.value)
                .values(client_id=None)
            )
        )

    async def _records(self, *where: Any) -> list[PaymentRecord]:
        return await self._db.read(
            lambda conn: [payment_from_row(r) for r in conn.execute(select(payments).where(*where))]
        )

    async def stale_reserved(self, older_than: float) -> list[PaymentRecord]:
        return await self._records(_p.state == PaymentState.RESERVED.value, _p.updated_at < older_than)

    async def settling(self) -> list[PaymentRecord]:
        return await self._records(_p.state == PaymentState.SETTLING.value)

    async def credit_balance(self, payer: str) -> int:
        value = await self._db.read(
            lambda conn: conn.scalar(select(credits.c.balance_micros).where(credits.c.payer == payer))
        )
        return int(value or 0)

    async def spend_credit(self, record: PaymentRecord, job: NewJob) -> bool:
        now = time.time()

        def op(conn: Connection) -> bool:
            debited = conn.execute(
                update(credits)
                .where(and_(credits.c.payer == record.key.payer, credits.c.balance_micros >= record.micros))
                .values(balance_micros=credits.c.balance_micros - record.micros, updated_at=now)
            )
            if not debited.rowcount:
                return False
            conn.execute(_INSERT_PAYMENT, _row(record))
            conn.execute(_INSERT_JOB, job_row(job, held=False, payment_id=record.id, now=now))
            self._on_runnable(conn, job.id)
            conn.execute(
                insert(credit_entries).values(
                    payer=record.key.payer,
                    delta_micros=-record.micros,
                    reason="spend",
                    job_id=job.id,
                    payment_id=record.id,
                    created_at=now,
                )
            )
            return True

        try:
            return await self._db.write(op)
        except IntegrityError:
            return False  # the same sign-in nonce was already spent: the caller replays instead
