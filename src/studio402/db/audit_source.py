"""Everything the ledger audit reads from the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from studio402.db.ledger_store import _record as payment_record
from studio402.db.refund_store import _record as refund_record
from studio402.db.schema import jobs, payments, refunds
from studio402.payments.ledger import PaymentRecord
from studio402.payments.refunds import RefundRecord


async def load(engine: AsyncEngine) -> tuple[list[PaymentRecord], dict[str, str], list[RefundRecord]]:
    async with engine.connect() as conn:
        pays = [payment_record(r) for r in await conn.execute(select(payments))]
        statuses = {r.id: r.status for r in await conn.execute(select(jobs.c.id, jobs.c.status))}
        refs = [refund_record(r) for r in await conn.execute(select(refunds))]
    return pays, statuses, refs
