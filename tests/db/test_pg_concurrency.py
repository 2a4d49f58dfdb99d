"""Races SQLite cannot show (it has one writer at a time): two processes' connection pools on one PostgreSQL
database, modelled as two `Database` objects, hitting the same rows at once."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from studio402.db.engine import Database, open_database
from studio402.db.job_store import SqlJobStore
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.db.schema import jobs
from studio402.jobs.model import JobStatus
from studio402.payments.refunds import RefundState
from tests.db.records import insert_job, payment, refund
from tests.pg_support import PgDatabase

JOBS = 80
CLAIMERS = 4  # concurrent claim loops per process


async def unclaimed(db: Database) -> int:
    pending = select(func.count()).select_from(jobs).where(jobs.c.status == JobStatus.PENDING.value)
    return int(await db.read(lambda conn: conn.execute(pending).scalar_one()))


@pytest.fixture
async def two_pools(pg_database: PgDatabase) -> AsyncIterator[tuple[Database, Database]]:
    await pg_database.truncate()
    first, second = await open_database(pg_database.url), await open_database(pg_database.url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_two_processes_claiming_at_once_never_take_the_same_job(
    two_pools: tuple[Database, Database],
) -> None:
    now = time.time()
    ids = [await insert_job(two_pools[0], now=now + i * 0.001) for i in range(JOBS)]
    taken: list[tuple[str, str]] = []
    left_behind: list[int] = []  # runnable jobs seen right after a claim found none

    async def claimer(store: SqlJobStore, owner: str) -> None:
        while True:
            job = await store.claim(owner, 30.0, time.time())
            if job is None:
                left_behind.append(await unclaimed(store.db))
                return
            taken.append((job.id, owner))

    stores = [SqlJobStore(db) for db in two_pools]
    await asyncio.wait_for(
        asyncio.gather(*(claimer(stores[p], f"proc{p}-w{w}") for p in range(2) for w in range(CLAIMERS))),
        30,
    )
    counts = collections.Counter(job_id for job_id, _ in taken)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}, counts.most_common(3)
    assert {owner.split("-")[0] for _, owner in taken} == {"proc0", "proc1"}  # both really claimed
    # "Nothing to do" only while every runnable job is being claimed by another worker (then at most one
    # per other claimer is left): a busy job is skipped, never a reason for a worker to go idle.
    assert max(left_behind) < 2 * CLAIMERS, left_behind


async def test_two_concurrent_refund_swaps_exactly_one_wins(two_pools: tuple[Database, Database]) -> None:
    ledger = SqlLedgerStore(two_pools[0])
    stores = [SqlRefundStore(db) for db in two_pools]
    for round_ in range(20):
        record = payment()
        await ledger.reserve(record)
        job_id = await insert_job(two_pools[0], payment_id=record.id, now=time.time())
        pending = refund(job_id, record.id)
        assert await stores[0].create(pending)
        now = time.time()
        mine = [
            dataclasses.replace(
                pending, state=RefundState.SENDING, tx_hash=f"0x{p}{round_}", updated_at=now + p
            )
            for p in range(2)
        ]
        won = await asyncio.gather(*(stores[p].swap(pending, mine[p]) for p in range(2)))
        assert sorted(won) == [False, True], won
        winner = mine[won.index(True)]
        assert await stores[1].get_for_job(job_id) == winner
