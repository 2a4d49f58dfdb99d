"""Each state enum's transition table is what its store enforces: for random (from, to) pairs, the store's
compare-and-set move succeeds iff the table allows the edge (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from enum import StrEnum
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from studio402.db.engine import Database
from studio402.db.job_store import SqlJobStore
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.db.schema import jobs, webhook_deliveries
from studio402.db.upload_store import SqlUploadStore
from studio402.db.webhook_store import SqlWebhookStore
from studio402.jobs.deliveries import (
    DELIVERY_TRANSITIONS,
    AttemptResult,
    DeliveryState,
    DueDelivery,
    NewDelivery,
)
from studio402.jobs.model import JOB_TRANSITIONS, JobStatus
from studio402.payments.ledger import PAYMENT_TRANSITIONS, PaymentState, new_id
from studio402.payments.refunds import REFUND_TRANSITIONS, RefundState
from studio402.storage.upload_model import UPLOAD_TRANSITIONS, Upload, UploadState
from studio402.transitions import Transitions
from tests.db.records import PAYER, insert_job, new_job, payment, refund

# The db fixture is function-scoped: every example writes its own fresh rows, so sharing it is safe.
PAIRS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
T0, T1 = 1_700_000_000.0, 1_700_000_100.0


def pairs(enum: type[StrEnum], *, skip_target: Any = None) -> st.SearchStrategy[tuple[Any, Any]]:
    """(from, to) over the enum; `skip_target`: a state no store method moves a row to."""
    targets = [state for state in enum if state is not skip_target]
    return st.tuples(st.sampled_from(list(enum)), st.sampled_from(targets))


def unreachable_by_any_store(table: Transitions[Any], targets: list[Any]) -> None:
    """A state no store method moves a row to must have no edge into it in the table either."""
    for target in targets:
        assert not table.sources(target), target


async def job_moved(db: Database, old: JobStatus, new: JobStatus) -> bool:
    store = SqlJobStore(db)
    job_id = await insert_job(db, now=T0)
    put = update(jobs).where(jobs.c.id == job_id).values(status=old.value, lease_owner="w")
    await db.write(lambda conn: conn.execute(put))
    if new is JobStatus.LOADING:
        return await store.claim_id(job_id, "w2", 30.0, T1) is not None
    if new is JobStatus.COMPLETE:
        return await store.complete(job_id, "w", {"images": []}, T1) is not None
    if new is JobStatus.FAILED:
        return await store.fail(job_id, "upstream_error", "boom", T1) is not None
    assert new is JobStatus.CANCELED
    return await store.cancel(job_id, T1) is not None


@PAIRS
@given(pairs(JobStatus, skip_target=JobStatus.PENDING))
async def test_job_moves_follow_the_table(db: Database, pair: tuple[JobStatus, JobStatus]) -> None:
    unreachable_by_any_store(JOB_TRANSITIONS, [JobStatus.PENDING])
    assert await job_moved(db, *pair) is JOB_TRANSITIONS.allows(*pair)


async def payment_moved(db: Database, old: PaymentState, new: PaymentState) -> bool:
    store = SqlLedgerStore(db)
    record = payment(state=old, now=T0)
    assert await store.reserve(record)
    if new is PaymentState.RESERVED:
        return await store.reopen(record.id, T1)
    if new is PaymentState.SETTLING:
        try:
            await store.begin_settlement(record.id, "0x" + "1" * 64, None, new_job(), T1)
        except AssertionError:  # "is not reserved"
            return False
    elif new is PaymentState.SETTLED:
        await store.finish_settlement(record.id, "0x" + "2" * 64, T1)
    else:
        await store.fail(record.id, "reverted", T1)
    after = await store.get_by_id(record.id)
    assert after is not None
    return after.updated_at == T1 and after.state is new


@PAIRS
@given(pairs(PaymentState))
async def test_payment_moves_follow_the_table(db: Database, pair: tuple[PaymentState, PaymentState]) -> None:
    assert await payment_moved(db, *pair) is PAYMENT_TRANSITIONS.allows(*pair)


@PAIRS
@given(pairs(RefundState))
async def test_refund_moves_follow_the_table(db: Database, pair: tuple[RefundState, RefundState]) -> None:
    old, new = pair
    store = SqlRefundStore(db)
    stored = refund(new_id("job"), new_id("pay"), state=old)
    assert await store.create(stored)
    moved = await store.swap(stored, replace(stored, state=new, updated_at=stored.updated_at + 1))
    assert moved is REFUND_TRANSITIONS.allows(old, new)


@PAIRS
@given(pairs(DeliveryState))
async def test_webhook_delivery_moves_follow_the_table(
    db: Database, pair: tuple[DeliveryState, DeliveryState]
) -> None:
    old, new = pair
    store = SqlWebhookStore(db)
    delivery = NewDelivery(new_id("msg"), new_id("job"), "job.complete", "https://hooks.test/", "{}", T0)
    assert await store.record(delivery)
    put = update(webhook_deliveries).where(webhook_deliveries.c.id == delivery.id).values(state=old.value)
    await db.write(lambda conn: conn.execute(put))
    due = DueDelivery(delivery.id, delivery.url, delivery.payload, 0, None)
    moved = await store.attempted(due, AttemptResult(new, 1, 500, None, T1, T1))
    assert moved is DELIVERY_TRANSITIONS.allows(old, new)


async def test_a_webhook_attempt_recorded_by_another_sender_is_not_recorded_twice(db: Database) -> None:
    store = SqlWebhookStore(db)
    delivery = NewDelivery(new_id("msg"), new_id("job"), "job.failed", "https://hooks.test/", "{}", T0)
    assert await store.record(delivery)
    assert not await store.record(replace(delivery, id=new_id("msg")))  # once per (job, event)
    [due] = [d for d in await store.due(T1, 20) if d.id == delivery.id]
    retry = AttemptResult(DeliveryState.PENDING, 1, 503, None, T0, T1)
    assert await store.attempted(due, retry)
    assert not await store.attempted(due, replace(retry, state=DeliveryState.DELIVERED, last_status=200))


@PAIRS
@given(pairs(UploadState, skip_target=UploadState.ISSUED))
async def test_upload_moves_follow_the_table(db: Database, pair: tuple[UploadState, UploadState]) -> None:
    unreachable_by_any_store(UPLOAD_TRANSITIONS, [UploadState.ISSUED])
    old, new = pair
    store = SqlUploadStore(db)
    slot = str(uuid.uuid4())
    upload = Upload(slot, new_id("job"), PAYER, f"uploads/{slot}/a.png", "image/png", 1000, T1, old, None)
    assert await store.create(upload, time.time())
    if new is UploadState.UPLOADED:
        moved = await store.uploaded(slot, 10, T1)
    else:
        moved = await store.confirmed(slot, T1)
    assert moved is UPLOAD_TRANSITIONS.allows(old, new)
    after = await store.by_id(slot)
    assert after is not None and after.state is (new if moved else old)
