"""The ledger store on SQLite and on PostgreSQL: the same tests (the `db` fixture runs each on both)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from sqlalchemy import select

from studio402.config import RefundMethod
from studio402.db.engine import Database
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.db.schema import credit_entries, jobs
from studio402.payments.ledger import CREDIT_NETWORK, PaymentKey, PaymentState
from studio402.payments.refunds import RefundState
from tests.db.records import PAYER, SOLANA_PAYER, SOLANA_SIGNATURE, new_job, payment, refund


async def job_rows(db: Database) -> list[dict[str, object]]:
    return await db.read(lambda conn: [dict(r._mapping) for r in conn.execute(select(jobs))])


async def test_a_payment_round_trips_exactly_and_its_key_is_taken_once(db: Database) -> None:
    ledger = SqlLedgerStore(db)
    record = payment(amount=2**70 + 3, client_id="client-1")  # atomic amounts may exceed 64 bits
    assert await ledger.reserve(record)
    assert not await ledger.reserve(dataclasses.replace(record, id="pay_other"))
    assert await ledger.get(record.key) == record
    assert await ledger.get_by_id(record.id) == record
    assert await ledger.get_by_client_id(PAYER, "client-1") == record
    assert await ledger.get(PaymentKey(record.key.network, record.key.payer, "0x00")) is None


async def test_a_solana_payment_keeps_its_full_signature(db: Database) -> None:
    """The nonce and tx of a Solana payment are an 88-character base58 signature."""
    ledger = SqlLedgerStore(db)
    record = payment(network="solana:devnet", payer=SOLANA_PAYER, nonce=SOLANA_SIGNATURE)
    assert await ledger.reserve(record)
    job = new_job(payer=SOLANA_PAYER)
    await ledger.begin_settlement(record.id, SOLANA_SIGNATURE, "AQID" * 200, job, time.time())
    await ledger.finish_settlement(record.id, None, time.time())
    settled = await ledger.get(record.key)
    assert settled is not None and settled.state is PaymentState.SETTLED
    assert settled.key.nonce == SOLANA_SIGNATURE and settled.tx_hash == SOLANA_SIGNATURE


async def test_settlement_holds_the_job_until_settled_and_settles_once(db: Database) -> None:
    ledger = SqlLedgerStore(db)
    record = payment()
    await ledger.reserve(record)
    job = new_job()
    await ledger.begin_settlement(record.id, "0x" + "aa" * 32, "0xraw", job, time.time())
    assert [(r["id"], r["held"]) for r in await job_rows(db)] == [(job.id, True)]
    assert [r.id for r in await ledger.settling()] == [record.id]
    await ledger.finish_settlement(record.id, None, time.time())
    await ledger.finish_settlement(record.id, "0x" + "bb" * 32, time.time())  # a late reconciler: no-op
    settled = await ledger.get_by_id(record.id)
    assert settled is not None and settled.state is PaymentState.SETTLED
    assert settled.tx_hash == "0x" + "aa" * 32 and settled.job_id == job.id
    assert [r["held"] for r in await job_rows(db)] == [False]


async def test_a_settlement_transaction_is_replaced_only_from_the_one_recorded(db: Database) -> None:
    """Two processes replacing the same dead transaction: one wins, the other must not broadcast; and a
    decided payment keeps its transaction."""
    ledger = SqlLedgerStore(db)
    record = payment()
    await ledger.reserve(record)
    dead, mine, theirs = ("0x" + c * 32 for c in ("aa", "bb", "cc"))
    await ledger.begin_settlement(record.id, dead, "0xraw", new_job(), time.time())
    won = await asyncio.gather(
        ledger.replace_settlement_tx(record.id, dead, mine, "0x01", time.time()),
        ledger.replace_settlement_tx(record.id, dead, theirs, "0x02", time.time()),
    )
    assert sorted(won) == [False, True]
    current = await ledger.get_by_id(record.id)
    assert current is not None and current.tx_hash == (mine if won[0] else theirs)
    assert current.raw_tx == ("0x01" if won[0] else "0x02")
    await ledger.finish_settlement(record.id, None, time.time())
    assert not await ledger.replace_settlement_tx(record.id, current.tx_hash, dead, "0x03", time.time())
    settled = await ledger.get_by_id(record.id)
    assert settled is not None and settled.tx_hash == current.tx_hash


async def test_a_failed_begin_settlement_writes_nothing(db: Database) -> None:
    """The state move and the job insert are one transaction: a payment not reserved gets no job."""
    ledger = SqlLedgerStore(db)
    record = payment()
    await ledger.reserve(record)
    await ledger.fail(record.id, "insufficient_funds", time.time())
    with pytest.raises(AssertionError):
        await ledger.begin_settlement(record.id, None, None, new_job(), time.time())
    assert await job_rows(db) == []


async def test_fail_drops_or_ends_the_held_job_and_a_failed_payment_reopens(db: Database) -> None:
    ledger = SqlLedgerStore(db)
    dropped, kept = payment(), payment()
    for record in (dropped, kept):
        await ledger.reserve(record)
        await ledger.begin_settlement(record.id, None, None, new_job(), time.time())
    await ledger.fail(dropped.id, "transaction_failed", time.time())
    await ledger.fail(kept.id, "transaction_failed", time.time(), keep_job=True)
    rows = await job_rows(db)
    assert [(r["payment_id"], r["status"], r["error_code"], r["held"]) for r in rows] == [
        (kept.id, "failed", "payment_failed", False)
    ]
    assert await ledger.reopen(dropped.id, time.time())
    assert not await ledger.reopen(dropped.id, time.time())  # only a failed payment reopens
    reopened = await ledger.get_by_id(dropped.id)
    assert reopened is not None and reopened.state is PaymentState.RESERVED and reopened.reason is None


async def test_stale_reserved_payments_are_found_by_age(db: Database) -> None:
    ledger = SqlLedgerStore(db)
    old, new = payment(now=1_000.25), payment(now=time.time())
    for record in (old, new):
        await ledger.reserve(record)
    assert [r.id for r in await ledger.stale_reserved(older_than=1_000.5)] == [old.id]


async def test_credit_spends_are_atomic_and_a_nonce_spends_once(db: Database) -> None:
    ledger, refunds = SqlLedgerStore(db), SqlRefundStore(db)
    paid = payment()
    await ledger.reserve(paid)
    first = refund("job_a", paid.id, method=RefundMethod.CREDIT, micros=50_000, state=RefundState.DONE)
    assert await refunds.credit(first)
    spend = payment(network=CREDIT_NETWORK, nonce="siwx-nonce-1", amount=None, micros=30_000)
    assert await ledger.spend_credit(spend, new_job(micros=30_000))
    assert await ledger.credit_balance(PAYER) == 20_000
    # The same sign-in nonce again: refused, and its debit rolled back with the failed insert.
    again = dataclasses.replace(spend, id="pay_again", micros=10_000)
    assert not await ledger.spend_credit(again, new_job(micros=10_000))
    assert await ledger.credit_balance(PAYER) == 20_000
    too_much = payment(network=CREDIT_NETWORK, nonce="siwx-nonce-2", amount=None, micros=20_001)
    assert not await ledger.spend_credit(too_much, new_job())
    entries = await db.read(
        lambda conn: [
            r.delta_micros for r in conn.execute(select(credit_entries).order_by(credit_entries.c.id))
        ]
    )
    assert entries == [50_000, -30_000]
    assert len(await job_rows(db)) == 1


async def test_concurrent_credit_spends_never_overdraw(db: Database) -> None:
    ledger, refunds = SqlLedgerStore(db), SqlRefundStore(db)
    paid = payment()
    await ledger.reserve(paid)
    credit = refund("job_a", paid.id, method=RefundMethod.CREDIT, micros=30_000, state=RefundState.DONE)
    assert await refunds.credit(credit)
    spends = [
        payment(network=CREDIT_NETWORK, nonce=f"siwxnonce{i}", amount=None, micros=10_000) for i in range(8)
    ]
    done = await asyncio.gather(*(ledger.spend_credit(s, new_job(micros=10_000)) for s in spends))
    assert done.count(True) == 3 and await ledger.credit_balance(PAYER) == 0
    assert len(await job_rows(db)) == 3
