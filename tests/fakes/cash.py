"""A payment method with an in-memory "chain" (balances, used nonces, a mempool), so the payment engine's
money rules (replays, conflicts, concurrency, unknown outcomes, crashes) are tested without a node. It
implements `studio402.payments.interfaces.PaymentMethod` as a real rail does: a settlement is announced
(`on_signed`) before it moves anything, and outcomes come from the fake chain's state, never from errors."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from x402.schemas import PaymentPayload

from studio402.errors import ChainError, MalformedPayment, PaymentRejected
from studio402.money import Asset
from studio402.payments.interfaces import OnSigned, Verified
from studio402.payments.offers import Offer, Requirement
from studio402.payments.outcome import SettleOutcome, SettleStatus

CASH = Offer(Asset("eip155:424242", "0x" + "ca" * 20, 6, "Cash", "1"), "0x" + "5e" * 20, 300)


class Mode(StrEnum):
    MINE = "mine"  # settle at once
    POOL = "pool"  # accepted, left in the mempool (unknown outcome until `mine()`)
    REFUSE = "refuse"  # refused before the pool (nothing sent)


@dataclass
class CashChain:
    balances: dict[str, int] = field(default_factory=dict)
    used: dict[str, str] = field(default_factory=dict)  # nonce -> tx that used it
    pool: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # tx -> (payer, nonce, amount)
    mode: Mode = Mode.MINE
    transfers: list[tuple[str, int, str]] = field(default_factory=list)  # (payer, amount, tx)

    def mine(self) -> None:
        for tx, (payer, nonce, amount) in list(self.pool.items()):
            del self.pool[tx]
            if nonce not in self.used and self.balances.get(payer, 0) >= amount:
                self.used[nonce] = tx
                self.balances[payer] -= amount
                self.transfers.append((payer, amount, tx))


def proof(payer: str, nonce: str, amount: int) -> str:
    return hashlib.sha256(f"{payer}|{nonce}|{amount}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CashPayment:
    requirement: Requirement
    payer: str
    nonce: str
    valid_before: int
    signature: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "payer": self.payer,
                "nonce": self.nonce,
                "validBefore": self.valid_before,
                "sig": self.signature,
            }
        )


def header(payer: str, amount: int, *, nonce: str | None = None, valid_before: int | None = None) -> str:
    """A PAYMENT-SIGNATURE paying the cash offer `amount` (atomic units) from `payer`."""
    nonce = nonce or secrets.token_hex(16)
    accepted = CASH.requirement(amount).to_v2()
    payload = {
        "x402Version": 2,
        "accepted": accepted,
        "payload": {
            "payer": payer,
            "nonce": nonce,
            "validBefore": valid_before or int(time.time()) + 300,
            "sig": proof(payer, nonce, amount),
        },
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


class CashMethod:
    def __init__(self, chain: CashChain) -> None:
        self.offer = CASH
        self.chain = chain

    def claimed(self, payload: PaymentPayload) -> tuple[str, str, str] | None:
        inner = payload.payload
        parts = inner.get("payer"), inner.get("nonce"), inner.get("sig")
        return parts if all(isinstance(p, str) for p in parts) else None  # type: ignore[return-value]

    def same_proof(self, stored: str, proof_: str) -> bool:
        return bool(json.loads(stored)["sig"] == proof_)

    def verify(self, payload: PaymentPayload, requirement: Requirement, now: float) -> CashPayment:
        inner: dict[str, Any] = payload.payload
        try:
            payment = CashPayment(
                requirement,
                str(inner["payer"]).lower(),
                str(inner["nonce"]),
                int(inner["validBefore"]),
                inner["sig"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedPayment(f"bad cash payload: {exc}") from None
        if payload.accepted.amount != str(requirement.amount):
            raise PaymentRejected("amount differs from the price", code="value_mismatch")
        if payment.valid_before < now + 6:
            raise PaymentRejected("expired", code="valid_before")
        if payment.signature != proof(payment.payer, payment.nonce, requirement.amount):
            raise PaymentRejected("bad signature", code="signature")
        return payment

    def restore(self, requirement: Requirement, stored: str) -> CashPayment:
        data = json.loads(stored)
        return CashPayment(requirement, data["payer"], data["nonce"], data["validBefore"], data["sig"])

    async def simulate(self, payment: Verified) -> str | None:
        if payment.nonce in self.chain.used:
            return "nonce_already_used"
        if self.chain.balances.get(payment.payer, 0) < payment.requirement.amount:
            return "insufficient_funds"
        return None

    async def settle(self, payment: Verified, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        if self.chain.mode is Mode.REFUSE:
            raise ChainError("refused before the pool", code="rpc_error")
        tx = "0x" + secrets.token_hex(32)
        await on_signed(tx, tx.encode())
        self.chain.pool[tx] = (payment.payer, payment.nonce, payment.requirement.amount)
        if self.chain.mode is Mode.MINE:
            self.chain.mine()
        return self._outcome(payment, tx)

    async def lookup(self, payment: Verified, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        return self._outcome(payment, tx_hash)

    def _outcome(self, payment: Verified, tx: str | None) -> SettleOutcome:
        used_by = self.chain.used.get(payment.nonce)
        if used_by is not None:
            return SettleOutcome(SettleStatus.SETTLED, used_by)
        if tx is not None and tx in self.chain.pool:
            return SettleOutcome(SettleStatus.UNKNOWN, tx)
        if payment.valid_before <= time.time():
            return SettleOutcome(SettleStatus.REVERTED, tx, "expired")
        return SettleOutcome(SettleStatus.UNKNOWN, tx)
