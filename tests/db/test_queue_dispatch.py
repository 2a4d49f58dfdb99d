"""Scale-out dispatch on PostgreSQL (procrastinate has no SQLite backend): the queue entry is written by the
transaction that makes the job runnable, so a paid job is never lost nor enqueued twice."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, text

from studio402.config import RefundMethod
from studio402.db.engine import Database, open_database
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.jobs import queue
from studio402.payments.ledger import CREDIT_NETWORK
from studio402.payments.refunds import RefundState
from tests.db.records import PAYER, insert_job, new_job, payment, refund
from tests.pg_support import PgDatabase


@pytest.fixture
async def pools(pg_database: PgDatabase) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' pools on the session's PostgreSQL database, emptied."""
    await pg_database.truncate()
    first, second = await open_database(pg_database.url), await open_database(pg_database.url)
    yield first, second
    await first.dispose()
    await second.dispose()


def entries(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.execute(text("SELECT queueing_lock, status FROM procrastinate_jobs ORDER BY id"))
    return [(r.queueing_lock, r.status) for r in rows]


def ledger_for(db: Database) -> SqlLedgerStore:
    return SqlLedgerStore(db, on_runnable=queue.enqueue_in)  # as the scale-out dispatcher wires it


async def test_a_settled_job_is_enqueued_once_even_by_two_settling_processes(
    pools: tuple[Database, Database],
) -> None:
    ledgers = [ledger_for(db) for db in pools]
    for _ in range(5):
        record = payment()
        await ledgers[0].reserve(record)
        job = new_job()
        await ledgers[0].begin_settlement(record.id, "0x" + "aa" * 32, None, job, time.time())
        assert (job.id, "todo") not in await pools[0].read(entries)  # held: not runnable yet
        await asyncio.gather(*(ledger.finish_settlement(record.id, None, time.time()) for ledger in ledgers))
        assert [e for e in await pools[1].read(entries) if e[0] == job.id] == [(job.id, "todo")]


async def test_a_rolled_back_spend_enqueues_nothing(pools: tuple[Database, Database]) -> None:
    db = pools[0]
    ledger = ledger_for(db)
    paid = payment()
    await ledger.reserve(paid)
    job_id = await insert_job(db, payment_id=paid.id, now=time.time())
    credit = refund(job_id, paid.id, method=RefundMethod.CREDIT, micros=50_000, state=RefundState.DONE)
    await SqlRefundStore(db).credit(credit)
    spend = payment(network=CREDIT_NETWORK, nonce="siwx-1", amount=None, micros=10_000)
    first = new_job(micros=10_000)
    assert await ledger.spend_credit(spend, first)
    again = new_job(micros=10_000)  # the same sign-in nonce: the insert fails, the transaction rolls back
    assert not await ledger.spend_credit(dataclasses.replace(spend, id="pay_again"), again)
    assert await db.read(entries) == [(first.id, "todo")]
    assert await ledger.credit_balance(PAYER) == 40_000


async def test_orphans_are_found_enqueued_once_and_a_cancel_aborts_the_entry(
    pools: tuple[Database, Database],
) -> None:
    db = pools[0]
    now = time.time()
    job_id = await insert_job(db, now=now)  # runnable, but its queue entry was lost
    assert await db.read(lambda conn: queue.orphans(conn, now)) == [job_id]
    taken = await asyncio.gather(
        *(d.write(lambda conn: queue.enqueue_if_idle(conn, job_id)) for d in pools for _ in range(3))
    )
    assert sorted(taken) == [False] * 5 + [True]
    assert await db.read(lambda conn: queue.orphans(conn, now)) == []
    assert await db.write(lambda conn: queue.abort_in(conn, job_id)) == 1  # what a cancel runs
    assert await db.read(entries) == [(job_id, "cancelled")]
