"""The upload-slot and webhook-delivery stores on SQLite and on PostgreSQL (the `db` fixture runs each test
on both): one row per paid slot / per job event, and compare-and-set moves where only one writer wins."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import select

from studio402.db.engine import Database
from studio402.db.schema import webhook_deliveries
from studio402.db.upload_store import SqlUploadStore
from studio402.db.webhook_store import SqlWebhookStore
from studio402.jobs.deliveries import AttemptResult, DeliveryState, NewDelivery
from studio402.payments.ledger import new_id
from studio402.storage.upload_model import Upload, UploadState
from tests.db.records import PAYER, insert_job


def slot(job_id: str, *, max_bytes: int = 2**40) -> Upload:
    upload_id = str(uuid.uuid4())
    name = "a" * 200  # the longest file name a slot is sold for
    return Upload(
        upload_id,
        job_id,
        PAYER,
        f"uploads/{upload_id}/{name}",
        "image/png",
        max_bytes,
        time.time() + 900.5,
        UploadState.ISSUED,
        None,
    )


async def test_one_slot_per_job_and_its_moves_are_compare_and_set(db: Database) -> None:
    store = SqlUploadStore(db)
    upload = slot("job_1")
    assert await store.create(upload, time.time())
    assert not await store.create(slot("job_1"), time.time())  # a replayed payment: the same slot
    assert await store.by_job("job_1") == upload  # big sizes and fractional expiry round-trip
    assert await store.by_pathname(upload.pathname) == upload
    assert not await store.confirmed(upload.id, time.time())  # nothing uploaded yet
    uploads = await asyncio.gather(*(store.uploaded(upload.id, 1234, time.time()) for _ in range(4)))
    assert sorted(uploads) == [False, False, False, True]  # one writer stores the bytes
    assert await store.confirmed(upload.id, time.time())
    confirmed = await store.by_id(upload.id)
    assert confirmed is not None and (confirmed.state, confirmed.size) == (UploadState.CONFIRMED, 1234)


def delivery(job_id: str, now: float) -> NewDelivery:
    return NewDelivery(new_id("msg"), job_id, "job.complete", "https://hooks.test/x", '{"a":1}', now)


async def test_a_delivery_is_recorded_once_and_two_senders_record_one_attempt(db: Database) -> None:
    store = SqlWebhookStore(db)
    now = time.time()
    job_id = await insert_job(db, now=now)
    first = delivery(job_id, now)
    assert await store.record(first)
    assert not await store.record(delivery(job_id, now))  # the same job event again
    later = delivery(await insert_job(db, now=now), now + 60)
    assert await store.record(later)
    (due,) = await store.due(now + 1, 20)
    assert due.id == first.id and due.attempts == 0 and due.webhook_secret is None
    retry = AttemptResult(DeliveryState.PENDING, 1, 503, None, now + 0.5, now)
    wins = await asyncio.gather(store.attempted(due, retry), store.attempted(due, retry))
    assert sorted(wins) == [False, True]  # both picked it; one attempt is recorded
    assert [d.id for d in await store.due(now + 0.25, 20)] == []  # backing off
    (again,) = await store.due(now + 1, 20)
    assert again.attempts == 1
    done = AttemptResult(DeliveryState.DELIVERED, 2, 200, None, now + 2, now + 1)
    assert await store.attempted(again, done)
    assert not await store.attempted(again, AttemptResult(DeliveryState.PENDING, 2, 500, None, now, now))
    state = select(webhook_deliveries.c.state).where(webhook_deliveries.c.id == first.id)
    assert await db.read(lambda conn: conn.execute(state).scalar_one()) == DeliveryState.DELIVERED.value
    assert [d.id for d in await store.due(now + 120, 20)] == [later.id]
