"""The refund port on SQLAlchemy Core. The job's `refund` view is written with every refund change."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from studio402.config import RefundMethod
from studio402.db.engine import Database
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.schema import credit_entries, credits, jobs, refunds
from studio402.db.transitions import may_move
from studio402.payments.ledger import PaymentRecord
from studio402.payments.refunds import REFUND_TRANSITIONS, RefundRecord, RefundState


def refund_from_row(row: Any) -> RefundRecord:
    m = row._mapping
    return RefundRecord(
        id=m["id"],
        job_id=m["job_id"],
        payment_id=m["payment_id"],
        payer=m["payer"],
        method=RefundMethod(m["method"]),
        micros=m["micros"],
        state=RefundState(m["state"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        network=m["network"],
        asset=m["asset"],
        amount=int(m["amount"]) if m["amount"] is not None else None,
        tx_hash=m["tx_hash"],
        raw_tx=m["raw_tx"],
        reason=m["reason"],
    )


def _row(r: RefundRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "job_id": r.job_id,
        "payment_id": r.payment_id,
        "payer": r.payer,
        "method": r.method.value,
        "micros": r.micros,
        "network": r.network,
        "asset": r.asset,
        "amount": str(r.amount) if r.amount is not None else None,
        "state": r.state.value,
        "tx_hash": r.tx_hash,
        "raw_tx": r.raw_tx,
        "reason": r.reason,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _show_on_job(conn: Connection, record: RefundRecord) -> None:
    conn.execute(
        update(jobs)
        .where(jobs.c.id == record.job_id)
        .values(refund=json.dumps(record.public()), updated_at=record.updated_at)
    )


def _add_credit(conn: Connection, payer: str, micros: int, now: float) -> None:
    """One upsert: with update-then-insert, two first credits of a payer at once (PostgreSQL) both found no
    row, and the second insert's unique violation rolled back its whole refund."""
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    new = upsert(credits).values(payer=payer, balance_micros=micros, updated_at=now)
    conn.execute(
        new.on_conflict_do_update(
            index_elements=[credits.c.payer],
            set_={
                "balance_micros": credits.c.balance_micros + new.excluded.balance_micros,
                "updated_at": new.excluded.updated_at,
            },
        )
    )


class SqlRefundStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._ledger = SqlLedgerStore(db)

    async def payment(self, payment_id: str) -> PaymentRecord | None:
        return await self._ledger.get_by_id(payment_id)

    async def get_for_job(self, job_id: str) -> RefundRecord | None:
        def op(conn: Connection) -> RefundRecord | None:
            row = conn.execute(select(refunds).where(refunds.c.job_id == job_id)).first()
            return refund_from_row(row) if row is not None else None

        return await self._db.read(op)

    async def create(self, record: RefundRecord) -> bool:
        def op(conn: Connection) -> None:
            conn.execute(insert(refunds).values(_row(record)))
            _show_on_job(conn, record)

        return await self._write_once(op)

    async def credit(self, record: RefundRecord) -> bool:
        def op(conn: Connection) -> None:
            conn.execute(insert(refunds).values(_row(record)))
            _add_credit(conn, record.payer, record.micros, record.updated_at)
            conn.execute(
                insert(credit_entries).values(
                    payer=record.payer,
                    delta_micros=record.micros,
                    reason="refund",
                    job_id=record.job_id,
                    payment_id=record.payment_id,
                    created_at=record.updated_at,
                )
            )
            _show_on_job(conn, record)

        return await self._write_once(op)

    async def _write_once(self, op: Callable[[Connection], None]) -> bool:
        """False when the job already has its refund (the unique key held): a refund is written once."""
        try:
            await self._db.write(op)
        except IntegrityError:
            return False
        return True

    async def swap(self, expected: RefundRecord, record: RefundRecord) -> bool:
        """Compare-and-set: write `record` only if the row is still `expected` (same state and updated_at).
        False when another sender or process changed it first."""
        values = _row(record)
        del values["id"], values["created_at"]

        def op(conn: Connection) -> bool:
            result = conn.execute(
                update(refunds)
                .where(
                    refunds.c.id == expected.id,
                    may_move(refunds.c.state, REFUND_TRANSITIONS, record.state),
                    refunds.c.state == expected.state.value,
                    refunds.c.updated_at == expected.updated_at,
                )
                .values(**values)
            )
            if result.rowcount:
                _show_on_job(conn, record)
            return bool(result.rowcount)

        return await self._db.write(op)

    async def unfinished(self) -> list[RefundRecord]:
        open_states = (RefundState.PENDING.value, RefundState.SENDING.value)
        return await self._db.read(
            lambda conn: [
                refund_from_row(r)
                for r in conn.execute(select(refunds).where(refunds.c.state.in_(open_states)))
            ]
        )
