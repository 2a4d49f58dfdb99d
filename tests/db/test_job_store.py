"""The job store and the in-process dispatch on SQLite and on PostgreSQL (each test runs on both)."""

from __future__ import annotations

import asyncio
import time

from studio402.db.engine import Database
from studio402.db.job_store import SqlJobStore
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.jobs.model import Job, JobStatus
from studio402.jobs.worker import WorkerPool
from studio402.payments.ledger import PaymentState
from tests.db.records import PAYER, insert_job, new_job, payment, refund

LEASE = 30.0


async def test_claims_take_the_oldest_paid_job_once(db: Database) -> None:
    store = SqlJobStore(db)
    now = time.time()
    held = await insert_job(db, held=True, now=now - 30)
    old = await insert_job(db, now=now - 20)
    young = await insert_job(db, now=now - 10)
    first = await store.claim("w1", LEASE, now)
    second = await store.claim("w2", LEASE, now)
    assert first is not None and first.id == old and first.status is JobStatus.LOADING
    assert second is not None and second.id == young
    assert await store.claim("w3", LEASE, now) is None  # the held job waits for its payment
    assert (await store.statuses())[held] == "pending"


async def test_an_expired_lease_moves_the_job_and_the_old_owner_loses_it(db: Database) -> None:
    store = SqlJobStore(db)
    now = time.time()
    job_id = await insert_job(db, now=now)
    assert await store.claim("w1", LEASE, now) is not None
    assert await store.claim("w2", LEASE, now + 1) is None  # leased
    assert await store.heartbeat(job_id, "w1", LEASE, now + 10)
    assert await store.claim("w2", LEASE, now + LEASE + 1) is None  # the heartbeat extended it
    taken = await store.claim("w2", LEASE, now + 2 * LEASE + 20)
    assert taken is not None and taken.id == job_id and taken.attempts == 2
    assert not await store.heartbeat(job_id, "w1", LEASE, now + 61)
    assert await store.set_progress(job_id, "w1", 50, now + 61) is None
    assert await store.complete(job_id, "w1", {"images": ["a"]}, now + 62) is None
    progressed = await store.set_progress(job_id, "w2", 150, now + 63)
    assert progressed is not None and progressed.progress == 100
    done = await store.complete(job_id, "w2", {"images": ["b"]}, now + 64)
    assert done is not None and done.status is JobStatus.COMPLETE and done.finished_at == now + 64
    assert await store.cancel(job_id, now + 65) is None  # terminal


async def test_cancel_fail_hide_and_released_leases(db: Database) -> None:
    store = SqlJobStore(db)
    now = time.time()
    first, second = [await insert_job(db, now=now + i) for i in range(2)]
    held = await insert_job(db, held=True, now=now - 5)
    assert await store.cancel(held, now) is None  # a job whose payment is settling cannot be canceled
    canceled = await store.cancel(first, now)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    running_job = await store.claim("w1", LEASE, now)
    assert running_job is not None and running_job.id == second
    await store.release_leases("w1")
    again = await store.claim("w2", LEASE, now)
    assert again is not None and again.id == second  # handed back at once, not after the lease
    failed = await store.fail(second, "upstream_error", "boom", now, owner="w1")
    assert failed is None  # no longer w1's
    failed = await store.fail(second, "upstream_error", "boom", now, owner="w2")
    assert failed is not None and failed.error_code == "upstream_error"
    assert not await store.hide(first, now)  # only failed jobs are hidden
    assert await store.hide(second, now)
    assert await store.get_for(PAYER, second) is None
    assert [j.id for j in await store.list_for(PAYER, status=None, limit=10, before=None)] == [first, held]


async def test_listing_pages_by_creation_time(db: Database) -> None:
    store = SqlJobStore(db)
    base = 1_700_000_000.125
    ids = [await insert_job(db, now=base + i * 0.001) for i in range(5)]
    await insert_job(db, payer="0x" + "cd" * 20, now=base)
    page = await store.list_for(PAYER, status=None, limit=2, before=None)
    assert [j.id for j in page] == ids[::-1][:2]
    rest = await store.list_for(PAYER, status=JobStatus.PENDING, limit=10, before=page[-1].created_at)
    assert [j.id for j in rest] == ids[::-1][2:]
    own = await store.get_for(PAYER.upper().replace("0X", "0x"), ids[0])
    assert own is not None and own.created_at == base
    assert await store.get_for("0x" + "cd" * 20, ids[0]) is None


async def test_needing_refund_lists_charged_ended_jobs_without_a_refund(db: Database) -> None:
    store, ledger, refunds = SqlJobStore(db), SqlLedgerStore(db), SqlRefundStore(db)
    now = time.time()
    ids = {}
    for name in ("failed", "refunded", "canceled_early", "unsettled"):
        record = payment()
        await ledger.reserve(record)
        job = new_job()
        await ledger.begin_settlement(record.id, None, None, job, now)
        if name != "unsettled":
            await ledger.finish_settlement(record.id, "0x" + "aa" * 32, now)
        ids[name] = (job.id, record.id)
    await store.cancel(ids["canceled_early"][0], now)  # before any worker started it
    for _ in range(2):  # the settled ones; the unsettled job is held
        claimed = await store.claim("w", LEASE, now)
        assert claimed is not None
    assert await store.claim("w", LEASE, now) is None
    for name in ("failed", "refunded"):
        await store.fail(ids[name][0], "upstream_error", "x", now)
    await refunds.create(refund(*ids["refunded"]))
    assert sorted(j.id for j in await store.needing_refund()) == sorted(
        [ids["failed"][0], ids["canceled_early"][0]]
    )
    unsettled = await ledger.get_by_id(ids["unsettled"][1])
    assert unsettled is not None and unsettled.state is PaymentState.SETTLING


class CompletingRunner:
    """The JobRunner port, completing each job through the store as the real runner does."""

    def __init__(self, store: SqlJobStore) -> None:
        self.store = store
        self.ran: list[str] = []

    async def run(self, job: Job) -> Job | None:
        self.ran.append(job.id)
        await asyncio.sleep(0.005)
        assert job.lease_owner is not None
        return await self.store.complete(job.id, job.lease_owner, {"images": [job.id]}, time.time())

    async def cancelled(self, job_id: str) -> None:
        return None


async def test_the_worker_pool_runs_each_paid_job_once(db: Database) -> None:
    store = SqlJobStore(db)
    now = time.time()
    ids = [await insert_job(db, now=now + i * 0.001) for i in range(12)]
    runner = CompletingRunner(store)
    pool = WorkerPool(store, runner, workers=3, owner="pool-1", lease_seconds=LEASE, idle_poll=0.02)  # type: ignore[arg-type]
    await pool.start()
    try:
        for _ in range(500):
            if set((await store.statuses()).values()) == {"complete"}:
                break
            await asyncio.sleep(0.01)
    finally:
        await pool.stop()
    assert sorted(runner.ran) == sorted(ids)
    assert set((await store.statuses()).values()) == {"complete"}


async def test_a_long_upstream_id_is_kept_whole(db: Database) -> None:
    """Upstream ids are the provider's (a polling URL, an operation name): whatever their length, they must
    persist, or a restarted worker would submit the paid job again."""
    store = SqlJobStore(db)
    now = time.time()
    job_id = await insert_job(db, now=now)
    assert await store.claim("w1", LEASE, now) is not None
    upstream = "https://api.eu1.bfl.ai/v1/get_result?id=" + "x" * 400
    moved = await store.set_upstream(job_id, "w1", "bfl", upstream, now)
    assert moved is not None and moved.upstream_id == upstream
