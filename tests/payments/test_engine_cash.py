"""The payment engine's money rules on a fake in-memory rail (no node): every test runs on the real ledger
store (on SQLite and on PostgreSQL) and the `PaymentMethod` port, as a chain-backed method would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from studio402.api.problems import error_response
from studio402.app.paid_request import content_digest
from studio402.catalog import CATALOG
from studio402.db.engine import Database
from studio402.db.ledger_store import SqlLedgerStore
from studio402.errors import ChainError, PaymentConflict, PaymentRejected
from studio402.payments import x402
from studio402.payments.engine import PaymentEngine
from studio402.payments.ledger import PaymentState
from studio402.payments.paid import Paid
from tests.fakes.cash import CASH, CashChain, CashMethod, Mode, header

ROUTE = CATALOG.get("nano-banana", "generate")
REQUEST = CATALOG.validate(ROUTE, {"prompt": "a lighthouse"})
OTHER = CATALOG.validate(ROUTE, {"prompt": "another body"})
MICROS = CATALOG.quote(REQUEST, 0)
RESOURCE = x402.Resource("http://studio.test/api/generate/nano-banana/generate", "Nano Banana")
PAYER = "0x" + "ab" * 20


@dataclass
class Rig:
    engine: PaymentEngine
    chain: CashChain
    ledger: SqlLedgerStore
    ready: list[str] = field(default_factory=list)
    clock: Clock = field(default_factory=lambda: Clock())

    async def pay(self, value: str, request: object = REQUEST) -> Paid:
        return await self.engine.pay(value, request, MICROS, RESOURCE)  # type: ignore[arg-type]


@dataclass
class Clock:
    ahead: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[Rig]:
    """On SQLite and on PostgreSQL (the `db` fixture)."""
    chain = CashChain(balances={PAYER: 10 * MICROS})
    ledger = SqlLedgerStore(db)
    ready: list[str] = []

    async def job_ready(job_id: str) -> None:
        ready.append(job_id)

    method = CashMethod(chain)
    clock = Clock()
    engine = PaymentEngine(
        [method.offer], [method], ledger, clock=clock, settle_timeout=2, job_ready=job_ready
    )
    yield Rig(engine, chain, ledger, ready, clock)


async def test_pays_once_and_a_replay_returns_the_same_job(rig: Rig) -> None:
    value = header(PAYER, MICROS)
    first = await rig.pay(value)
    again = await rig.pay(value)
    assert first.settled and again.replay and again.job_id == first.job_id
    assert len(rig.chain.transfers) == 1 and rig.ready == [first.job_id]


async def test_the_same_payment_for_another_body_is_a_conflict(rig: Rig) -> None:
    value = header(PAYER, MICROS)
    await rig.pay(value)
    with pytest.raises(PaymentConflict):
        await rig.pay(value, OTHER)
    assert len(rig.chain.transfers) == 1


async def test_concurrent_duplicates_settle_once(rig: Rig) -> None:
    value = header(PAYER, MICROS)
    results = await asyncio.gather(*(rig.pay(value) for _ in range(10)), return_exceptions=True)
    jobs = {r.job_id for r in results if isinstance(r, Paid)}
    assert len(jobs) == 1, results
    assert len(rig.chain.transfers) == 1


async def test_an_unknown_outcome_is_never_a_402_and_the_reconciler_settles_it(rig: Rig) -> None:
    rig.chain.mode = Mode.POOL
    value = header(PAYER, MICROS)
    pending = await rig.pay(value)
    assert not pending.settled and rig.chain.transfers == []
    rig.clock.ahead = 10  # past the original's settle wait: its duplicate answers pending without waiting
    replay = await rig.pay(value)
    assert replay.job_id == pending.job_id and not replay.settled
    rig.chain.mine()
    counts = await rig.engine.reconcile()
    assert counts["settled"] == 1 and rig.ready == [pending.job_id]
    record = await rig.ledger.get_by_id(await _job_payment(rig, pending.job_id))
    assert record is not None and record.state is PaymentState.SETTLED
    assert await rig.ledger.settling() == []


async def test_a_refusal_before_the_pool_frees_the_payment_for_a_retry(rig: Rig) -> None:
    rig.chain.mode = Mode.REFUSE
    value = header(PAYER, MICROS)
    with pytest.raises(ChainError):
        await rig.pay(value)
    assert rig.chain.transfers == []
    rig.chain.mode = Mode.MINE
    paid = await rig.pay(value)
    assert paid.settled and len(rig.chain.transfers) == 1


async def test_underpaid_or_unfunded_payments_are_refused_with_nothing_moved(rig: Rig) -> None:
    with pytest.raises(PaymentRejected):
        await rig.pay(header(PAYER, MICROS - 1))
    with pytest.raises(PaymentRejected) as info:
        await rig.pay(header("0x" + "cd" * 20, MICROS))
    assert info.value.code == "insufficient_funds"
    assert rig.chain.transfers == []


async def _job_payment(rig: Rig, job_id: str) -> str:
    from sqlalchemy import select

    from studio402.db.schema import jobs

    db = rig.ledger._db
    payment_id: str = await db.read(
        lambda conn: conn.execute(select(jobs.c.payment_id).where(jobs.c.id == job_id)).scalar_one()
    )
    return payment_id


class FixedIssuer:
    """An MPP-style method: its offer travels in `WWW-Authenticate`, bound to the body digest."""

    def www_authenticate(self, resource: x402.Resource, micros: int, body_digest: str | None) -> str:
        return f'Payment method="cash", amount="{micros}", resource="{resource.url}", digest="{body_digest}"'


def test_the_402_carries_every_challenge_header_bound_to_the_body() -> None:
    engine = PaymentEngine([CASH], issuers=[FixedIssuer(), FixedIssuer()])
    body = b'{"prompt":"a lighthouse"}'
    digest = content_digest(body)
    assert digest == "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    exc = engine.payment_required(RESOURCE, MICROS, body_digest=digest)
    response = error_response(exc, "/api/generate/nano-banana/generate")
    assert response.status_code == 402 and "PAYMENT-REQUIRED" in response.headers
    offers = response.headers.getlist("WWW-Authenticate")
    assert len(offers) == 2 and all(f'digest="{digest}"' in o and f'amount="{MICROS}"' in o for o in offers)
