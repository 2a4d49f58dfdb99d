"""The refund port on SQLAlchemy Core. The job's `refund` view is written with every refund change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from studio402.config import RefundMethod
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.schema import credit_entries, credits, jobs, refunds
from studio402.payments.ledger import PaymentRecord
from studio402.payments.refunds import RefundRecord, RefundState


def _record(row: Any) -> RefundRecord:
    m = row._mapping
    return RefundRecord(
        id=m["id"], job_id=m["job_id"], payment_id=m["payment_id"], payer=m["payer"],
        method=RefundMethod(m["method"]), micros=m["micros"], state=RefundState(m["state"]),
        created_at=m["created_at"], updated_at=m["updated_at"], network=m["network"], asset=m["asset"],
        amount=int(m["amount"]) if m["amount"] is not None else None, tx_hash=m["tx_hash"], raw_tx=m["raw_tx"],
        reason=m["reason"],
    )


def _row(r: RefundRecord) -> dict[str, Any]:
    return {
        "id": r.id, "job_id": r.job_id, "payment_id": r.payment_id, "payer": r.payer, "method": r.method.value,
        "micros": r.micros, "network": r.network, "asset": r.asset,
        "amount": str(r.amount) if r.amount is not None else None, "state": r.state.value, "tx_hash": r.tx_hash,
        "raw_tx": r.raw_tx, "reason": r.reason, "created_at": r.created_at, "updated_at": r.updated_at,
    }


class SqlRefundStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._ledger = SqlLedgerStore(engine)

    async def payment(self, payment_id: str) -> PaymentRecord | None:
        return await self._ledger.get_by_id(payment_id)

    async def get_for_job(self, job_id: str) -> RefundRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(refunds).where(refunds.c.job_id == job_id))).first()
        return _record(row) if row is not None else None

    async def _show_on_job(self, conn: AsyncConnection, record: RefundRecord) -> None:
        await conn.execute(update(jobs).where(jobs.c.id == record.job_id).values(
            refund=json.dumps(record.public()), updated_at=record.updated_at))

    async def create(self, record: RefundRecord) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(refunds).values(_row(record)))
                await self._show_on_job(conn, record)
        except IntegrityError:
            return False
        return True

    async def credit(self, record: RefundRecord) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(refunds).values(_row(record)))
                added = await conn.execute(update(credits).where(credits.c.payer == record.payer).values(
                    balance_micros=credits.c.balance_micros + record.micros, updated_at=record.updated_at))
                if not added.rowcount:
                    await conn.execute(insert(credits).values(payer=record.payer, balance_micros=record.micros,
                                                              updated_at=record.updated_at))
                await conn.execute(insert(credit_entries).values(
                    payer=record.payer, delta_micros=record.micros, reason="refund", job_id=record.job_id,
                    payment_id=record.payment_id, created_at=record.updated_at))
                await self._show_on_job(conn, record)
        except IntegrityError:
            return False
        return True

    async def update(self, record: RefundRecord) -> None:
        async with self._engine.begin() as conn:
            values = _row(record)
            del values["id"], values["created_at"]
            await conn.execute(update(refunds).where(refunds.c.id == record.id).values(**values))
            await self._show_on_job(conn, record)

    async def unfinished(self) -> list[RefundRecord]:
        open_states = (RefundState.PENDING.value, RefundState.SENDING.value)
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(refunds).where(refunds.c.state.in_(open_states)))
            return [_record(r) for r in rows]
