"""Which payment header wins, decided by the paid-request service (not the edge); a fake engine records
which of its ways to pay was called. The real engine behind each way is tested in tests/payments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from starlette.datastructures import Headers

from studio402.app.paid_request import PaidCall, PaidRequestConfig, PaidRequests, content_digest
from studio402.app.ratelimit import TokenBuckets
from studio402.auth.siwx import SiwxVerifier
from studio402.catalog import CATALOG
from studio402.errors import PaymentRequired
from studio402.payments.engine import PaymentEngine
from studio402.payments.methods.tempo_method import TempoChargeMethod

PAID = object()
BODY = b'{"prompt": "a lighthouse"}'
MPP = "Payment id=abc"


@dataclass
class FakeEngine:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def requirements(self, micros: int) -> list[Any]:
        return []

    async def pay(self, header: str, request: Any, micros: int, resource: Any, *, v1: bool = False) -> Any:
        self.calls.append(("pay", header, v1, resource.body_digest))
        return PAID

    async def pay_payload(self, payload: Any, request: Any, micros: int, resource: Any) -> Any:
        self.calls.append(("mpp", payload))
        return PAID

    def payment_required(self, resource: Any, micros: int, **options: Any) -> PaymentRequired:
        self.calls.append(("402", options.get("body_digest")))
        return PaymentRequired("pay")


class FakeMpp:
    def to_payload(self, authorization: str, resource: Any, micros: int, body: bytes) -> Any:
        return (authorization, body)


def service(engine: FakeEngine, *, mpp: bool = False) -> PaidRequests:
    return PaidRequests(
        CATALOG,
        cast(PaymentEngine, engine),
        SiwxVerifier("https://studio.test", supported_chain_ids=[31337]),
        TokenBuckets(10),
        PaidRequestConfig("https://studio.test", 0, credit=False),
        mpp=cast(TempoChargeMethod, FakeMpp()) if mpp else None,
    )


async def buy(engine: FakeEngine, headers: dict[str, str], *, mpp: bool = False) -> Any:
    route = CATALOG.get("nano-banana", "generate")
    call = PaidCall(Headers(headers), BODY, "203.0.113.9")
    return await service(engine, mpp=mpp).buy(call, route, {"prompt": "a lighthouse"})


async def test_mpp_authorization_wins_when_the_tempo_rail_runs() -> None:
    engine = FakeEngine()
    purchase = await buy(engine, {"authorization": MPP, "payment-signature": "v2"}, mpp=True)
    assert engine.calls == [("mpp", (MPP, BODY))] and purchase.paid is PAID


async def test_without_the_tempo_rail_an_mpp_authorization_is_ignored() -> None:
    engine = FakeEngine()
    await buy(engine, {"authorization": MPP, "payment-signature": "v2"})
    assert engine.calls == [("pay", "v2", False, content_digest(BODY))]


async def test_v2_signature_beats_v1_and_the_answer_is_v2() -> None:
    engine = FakeEngine()
    purchase = await buy(engine, {"Payment-Signature": "v2", "X-PAYMENT": "v1"})
    assert engine.calls[0][:3] == ("pay", "v2", False) and purchase.v1 is False


async def test_x_payment_alone_pays_as_v1() -> None:
    engine = FakeEngine()
    purchase = await buy(engine, {"x-payment": "v1"})
    assert engine.calls[0][:3] == ("pay", "v1", True) and purchase.v1 is True


@pytest.mark.parametrize("headers", [{}, {"sign-in-with-x": "proof"}])
async def test_no_payment_or_a_sign_in_without_credit_refunds_is_a_402_bound_to_the_body(
    headers: dict[str, str],
) -> None:
    engine = FakeEngine()
    with pytest.raises(PaymentRequired):
        await buy(engine, headers)
    assert engine.calls == [("402", content_digest(BODY))]


def test_what_carries_a_payment() -> None:
    def carries(headers: dict[str, str]) -> bool:
        return PaidCall(Headers(headers), b"", "c").carries_payment

    assert carries({"authorization": "PAYMENT x"}) and carries({"x-payment": "1"})
    assert carries({"sign-in-with-x": "p"}) and not carries({"authorization": "Bearer t"})
