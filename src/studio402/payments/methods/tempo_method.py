"""MPP `charge` on Tempo behind the engine's `PaymentMethod` port.

The HTTP edge puts an `Authorization: Payment` credential into the engine's payload shape (`to_payload`):
`accepted` names this rail's offer, `payload` carries the credential and the route it must be bound to. From
there the engine's rules hold as for x402: the ledger keys the payment by its transaction hash (one
transaction = one job, a replay returns the job, another body is a 409), outcomes from chain facts."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from x402.schemas import PaymentPayload

from studio402.errors import MalformedPayment
from studio402.money import Asset, account_key
from studio402.payments.interfaces import OnSigned, Verified
from studio402.payments.methods.tempo_charge import (
    RouteRequest,
    TempoCharge,
    TempoChargeConfig,
    claimed,
    parse_credential,
    route_for,
    verify,
)
from studio402.payments.offers import Offer, Requirement
from studio402.payments.outcome import SettleOutcome
from studio402.payments.x402 import Resource

DECIMALS = 6  # TIP-20 stablecoins


class TempoSettlement(Protocol):
    async def simulate(self, charge: TempoCharge) -> str | None: ...

    async def settle(self, charge: TempoCharge, *, on_signed: OnSigned, timeout: float) -> SettleOutcome: ...

    async def lookup(self, charge: TempoCharge) -> SettleOutcome: ...


@dataclass(frozen=True, slots=True)
class TempoPayment:
    """A verified charge for one requirement (the engine's `Verified`)."""

    requirement: Requirement
    charge: TempoCharge

    @property
    def payer(self) -> str:
        return account_key(self.charge.payer)

    @property
    def nonce(self) -> str:
        return self.charge.tx_hash.lower()

    @property
    def valid_before(self) -> int:
        return self.charge.valid_before

    def to_json(self) -> str:
        return self.charge.to_json()


def tempo_offer(config: TempoChargeConfig, ttl_seconds: int) -> Offer:
    """The rail as an offer: `tempo:<chain id>` keeps its ledger keys apart from every EVM network's."""
    asset = Asset(f"tempo:{config.chain_id}", config.currency, DECIMALS, "TIP-20", "1")
    return Offer(asset, config.recipient, ttl_seconds)


class TempoChargeMethod:
    def __init__(
        self,
        config: TempoChargeConfig,
        settlement: TempoSettlement,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.offer = tempo_offer(config, config.ttl_seconds)
        self._settlement = settlement
        self._clock = clock

    def to_payload(self, authorization: str, resource: Resource, micros: int, body: bytes) -> PaymentPayload:
        """The credential in the engine's payload shape, bound to this request's route and body."""
        route = route_for(resource, micros, body)
        accepted = self.offer.requirement(micros).to_v2()
        inner = {"authorization": authorization, "route": _route_json(route)}
        return PaymentPayload.model_validate({"x402Version": 2, "accepted": accepted, "payload": inner})

    def claimed(self, payload: PaymentPayload) -> tuple[str, str, str] | None:
        header = payload.payload.get("authorization")
        if not isinstance(header, str):
            return None
        try:
            found = claimed(parse_credential(header))
        except MalformedPayment:
            return None
        if found is None:
            return None
        payer, tx_hash, raw = found
        return payer, tx_hash, raw

    def same_proof(self, stored: str, proof: str) -> bool:
        return TempoCharge.from_json(stored).raw_tx.lower() == proof.lower()

    def verify(self, payload: PaymentPayload, requirement: Requirement, now: float) -> TempoPayment:
        header, route = payload.payload.get("authorization"), payload.payload.get("route")
        if not isinstance(header, str) or not isinstance(route, dict):
            raise MalformedPayment("no MPP credential", code="malformed-credential")
        charge = verify(self.config, parse_credential(header), _route_of(route), now=now)
        return TempoPayment(requirement, charge)

    def restore(self, requirement: Requirement, stored: str) -> TempoPayment:
        return TempoPayment(requirement, TempoCharge.from_json(stored))

    async def simulate(self, payment: Verified) -> str | None:
        return await self._settlement.simulate(_charge(payment))

    async def settle(self, payment: Verified, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        return await self._settlement.settle(_charge(payment), on_signed=on_signed, timeout=timeout)

    async def lookup(self, payment: Verified, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        return await self._settlement.lookup(_charge(payment))


def _charge(payment: Verified) -> TempoCharge:
    assert isinstance(payment, TempoPayment), payment  # the engine hands a method its own payments
    return payment.charge


def _route_json(route: RouteRequest) -> dict[str, Any]:
    data = asdict(route)
    data["body"] = base64.b64encode(route.body).decode()
    return data


def _route_of(data: dict[str, Any]) -> RouteRequest:
    try:
        return RouteRequest(
            int(data["amount"]),
            str(data["http_method"]),
            str(data["path"]),
            str(data["query"]),
            base64.b64decode(str(data["body"])),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise MalformedPayment("no MPP route", code="malformed-credential") from exc
