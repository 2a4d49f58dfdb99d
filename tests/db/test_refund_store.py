"""The refund store on SQLite and on PostgreSQL (the `db` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from sqlalchemy import select

from studio402.config import RefundMethod
from studio402.db.engine import Database
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.db.schema import credit_entries, jobs
from studio402.payments.refunds import RefundState
from tests.db.records import PAYER, SOLANA_SIGNATURE, insert_job, payment, refund


async def paid_job(db: Database) -> tuple[str, str]:
    record = payment()
    await SqlLedgerStore(db).reserve(record)
    return await insert_job(db, payment_id=record.id, now=time.time()), record.id


async def shown_on_job(db: Database, job_id: str) -> object:
    raw = await db.read(lambda conn: conn.scalar(select(jobs.c.refund).where(jobs.c.id == job_id)))
    return json.loads(raw) if raw is not None else None


async def test_a_job_gets_one_refund_and_shows_it(db: Database) -> None:
    store = SqlRefundStore(db)
    job_id, payment_id = await paid_job(db)
    first = refund(job_id, payment_id)
    assert await store.create(first)
    assert not await store.create(refund(job_id, payment_id))  # the unique job key holds
    assert await store.get_for_job(job_id) == first
    assert await store.unfinished() == [first]
    assert await shown_on_job(db, job_id) == first.public()
    paying = await store.payment(payment_id)
    assert paying is not None and paying.id == payment_id


async def test_swap_is_compare_and_set_on_state_and_time(db: Database) -> None:
    store = SqlRefundStore(db)
    job_id, payment_id = await paid_job(db)
    pending = refund(job_id, payment_id)
    await store.create(pending)
    sending = dataclasses.replace(
        pending,
        state=RefundState.SENDING,
        tx_hash=SOLANA_SIGNATURE,
        raw_tx="ab" * 300,
        updated_at=time.time(),
    )
    assert await store.swap(pending, sending)
    assert not await store.swap(pending, dataclasses.replace(sending, reason="stale"))  # expected is old
    assert await store.get_for_job(job_id) == sending  # times round-trip exactly (the CAS compares them)
    done = dataclasses.replace(sending, state=RefundState.DONE, updated_at=time.time())
    assert await store.swap(sending, done)
    assert await store.unfinished() == []
    assert await shown_on_job(db, job_id) == done.public()


async def test_credit_refunds_add_up_on_the_payer_balance(db: Database) -> None:
    store, ledger = SqlRefundStore(db), SqlLedgerStore(db)
    amounts = (10_000, 25_000, 40_000)
    for micros in amounts:
        job_id, payment_id = await paid_job(db)
        credit = refund(job_id, payment_id, method=RefundMethod.CREDIT, micros=micros, state=RefundState.DONE)
        assert await store.credit(credit)
        assert not await store.credit(dataclasses.replace(credit, id="ref_again"))  # once per job
    assert await ledger.credit_balance(PAYER) == sum(amounts)
    entries = await db.read(lambda conn: list(conn.scalars(select(credit_entries.c.delta_micros))))
    assert sorted(entries) == sorted(amounts)


async def test_concurrent_first_credits_of_one_payer_all_land(db: Database) -> None:
    """Two refunds (two jobs) credit a payer with no balance row yet at the same time: both land."""
    store, ledger = SqlRefundStore(db), SqlLedgerStore(db)
    for round_ in range(5):
        payer = f"0x{round_:040x}"
        credits = []
        for _ in range(4):
            job_id, payment_id = await paid_job(db)
            credits.append(refund(job_id, payment_id, payer=payer, method=RefundMethod.CREDIT, micros=1_000))
        landed = await asyncio.gather(*(store.credit(c) for c in credits))
        assert landed == [True] * 4
        assert await ledger.credit_balance(payer) == 4_000
