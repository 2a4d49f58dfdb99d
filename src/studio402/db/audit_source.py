"""Everything the ledger audit reads from the database."""

from __future__ import annotations

from sqlalchemy import Connection, select

from studio402.db.engine import Database
from studio402.db.ledger_store import payment_from_row
from studio402.db.refund_store import refund_from_row
from studio402.db.schema import jobs, payments, refunds
from studio402.payments.ledger import PaymentRecord
from studio402.payments.refunds import RefundRecord

Snapshot = tuple[list[PaymentRecord], dict[str, str], list[RefundRecord]]


async def load(db: Database) -> Snapshot:
    def op(conn: Connection) -> Snapshot:
        pays = [payment_from_row(r) for r in conn.execute(select(payments))]
        statuses = {r.id: r.status for r in conn.execute(select(jobs.c.id, jobs.c.status))}
        refs = [refund_from_row(r) for r in conn.execute(select(refunds))]
        return pays, statuses, refs

    return await db.read(op)
