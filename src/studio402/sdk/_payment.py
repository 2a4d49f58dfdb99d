"""Answering a 402: pick what this wallet can pay among the server's offers, hold it against the spend
limits, and sign it with the official x402 client, carrying a payment identifier (x402
`payment-identifier` extension) so that a retry of the same call is recognised and never paid twice."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from x402 import x402Client
from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentRequired

from studio402.sdk._errors import NoPayableOffer, SpendLimitExceeded
from studio402.sdk._models import Price
from studio402.sdk._wallet import Wallet

PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"


def new_payment_id() -> str:
    return "pay_" + secrets.token_hex(16)


def decode_header(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(value))
    return decoded


@dataclass
class SpendLimits:
    """Refuse to pay more than `per_call` for one request or `per_session` in total (None: no limit)."""

    per_call: Price | None = None
    per_session: Price | None = None


class Spending:
    """What this client has paid (or signed to pay) so far, checked against its limits before signing."""

    def __init__(self, limits: SpendLimits) -> None:
        self.limits = limits
        self.spent = 0

    def check(self, price: Price) -> None:
        call, session = self.limits.per_call, self.limits.per_session
        if call is not None and price.micros > call.micros:
            raise SpendLimitExceeded(f"price ${price.usd} is above the per-call limit ${call.usd}; not paid")
        if session is not None and self.spent + price.micros > session.micros:
            left = Price(max(0, session.micros - self.spent))
            raise SpendLimitExceeded(
                f"price ${price.usd} is above what is left of the session limit (${left.usd}); not paid"
            )

    def add(self, price: Price) -> None:
        self.spent += price.micros

    def release(self, price: Price) -> None:
        self.spent -= price.micros


@dataclass(frozen=True, slots=True)
class Signed:
    header: str  # the PAYMENT-SIGNATURE value
    price: Price
    network: str
    payment_id: str


def payable(wallet: Wallet, required: dict[str, Any], networks: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The server's `accepts` this wallet can pay (on `networks`, CAIP-2 prefixes, when given), cheapest
    first."""
    offers = [
        a
        for a in required.get("accepts") or []
        if wallet.can_pay(network := str(a.get("network", "")))
        and (not networks or any(network.startswith(n) for n in networks))
    ]
    return sorted(offers, key=lambda a: int(a.get("amount", 0)))


async def sign_payment(
    client: x402Client,
    wallet: Wallet,
    required: dict[str, Any],
    spending: Spending,
    payment_id: str,
    networks: Sequence[str] = (),
) -> Signed:
    """A PAYMENT-SIGNATURE for the cheapest offer this wallet can pay, within the spend limits."""
    offers = payable(wallet, required, networks)
    if not offers:
        networks = ", ".join(str(a.get("network")) for a in required.get("accepts") or []) or "none"
        raise NoPayableOffer(f"this wallet cannot pay any offer of the server (networks: {networks})")
    offer = offers[0]
    price = Price(int(offer["amount"]))
    spending.check(price)
    narrowed = PaymentRequired.model_validate({**required, "accepts": [offer]})
    payload = await client.create_payment_payload(narrowed)
    payload = with_payment_id(payload, required, payment_id)
    return Signed(encode_payment_signature_header(payload), price, str(offer["network"]), payment_id)


def with_payment_id(payload: Any, required: dict[str, Any], payment_id: str) -> Any:
    """The payload with our payment identifier, when the server declared the extension."""
    declared = (required.get("extensions") or {}).get(PAYMENT_IDENTIFIER)
    if not isinstance(declared, dict):
        return payload
    extensions = dict(payload.extensions or {})
    entry = dict(extensions.get(PAYMENT_IDENTIFIER) or declared)
    entry["info"] = {**(entry.get("info") or {}), "id": payment_id}
    extensions[PAYMENT_IDENTIFIER] = entry
    return payload.model_copy(update={"extensions": extensions})
