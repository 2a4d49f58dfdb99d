"""Rows for the store tests: payments, jobs and refunds as the engine makes them."""

from __future__ import annotations

import time

from sqlalchemy import insert

from studio402.config import RefundMethod
from studio402.db.engine import Database
from studio402.db.ledger_store import job_row
from studio402.db.schema import jobs
from studio402.payments.ledger import NewJob, PaymentKey, PaymentRecord, PaymentState, new_id
from studio402.payments.refunds import RefundRecord, RefundState

PAYER = "0x" + "ab" * 20
NETWORK = "eip155:31337"
# A Solana payment's nonce and transaction id are its 64-byte signature in base58: up to 88 characters.
SOLANA_SIGNATURE = "5" + "j" * 87
SOLANA_PAYER = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


def payment(
    *,
    network: str = NETWORK,
    payer: str = PAYER,
    nonce: str | None = None,
    micros: int = 40_000,
    amount: int | None = 40_000,
    client_id: str | None = None,
    state: PaymentState = PaymentState.RESERVED,
    now: float | None = None,
) -> PaymentRecord:
    at = time.time() if now is None else now
    return PaymentRecord(
        id=new_id("pay"),
        key=PaymentKey(network, payer, nonce or "0x" + new_id("n")[2:].ljust(64, "0")),
        fingerprint="f" * 64,
        route="nano-banana/generate",
        micros=micros,
        state=state,
        created_at=at,
        updated_at=at,
        client_id=client_id,
        asset="0x5fbdb2315678afecb367f032d93f642f64180aa3",
        amount=amount,
        pay_to="0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        valid_before=int(at) + 600,
        payload='{"authorization": {}}',
    )


def new_job(*, payer: str = PAYER, micros: int = 40_000) -> NewJob:
    return NewJob(new_id("job"), payer, "nano-banana", "generate", '{"prompt":"a fox"}', "f" * 64, micros)


async def insert_job(
    db: Database, *, payer: str = PAYER, held: bool = False, payment_id: str | None = None, now: float
) -> str:
    """A paid (or held) pending job row, created at `now`."""
    job = new_job(payer=payer)
    row = job_row(job, held=held, payment_id=payment_id, now=now)
    await db.write(lambda conn: conn.execute(insert(jobs).values(row)))
    return job.id


def refund(
    job_id: str,
    payment_id: str,
    *,
    payer: str = PAYER,
    method: RefundMethod = RefundMethod.ONCHAIN,
    micros: int = 40_000,
    state: RefundState = RefundState.PENDING,
) -> RefundRecord:
    now = time.time()
    return RefundRecord(
        id=new_id("ref"),
        job_id=job_id,
        payment_id=payment_id,
        payer=payer,
        method=method,
        micros=micros,
        state=state,
        created_at=now,
        updated_at=now,
        network=NETWORK if method is RefundMethod.ONCHAIN else None,
        asset="0x5fbdb2315678afecb367f032d93f642f64180aa3" if method is RefundMethod.ONCHAIN else None,
        amount=micros if method is RefundMethod.ONCHAIN else None,
    )
