"""Ledger values: payment keys, records, states and their allowed transitions (no I/O here).

A payment is identified by (network, payer, nonce): the EIP-3009 nonce can be used once on chain, so the
same key can never be charged twice. Its fingerprint binds it to one request (model, operation, body)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from enum import StrEnum

from studio402.money import account_key
from studio402.transitions import Transitions

CREDIT_NETWORK = "credit"  # payments spent from a refund balance instead of on chain


class PaymentState(StrEnum):
    RESERVED = "reserved"  # verified and claimed by one request; nothing broadcast yet
    SETTLING = "settling"  # a settlement transaction may be on chain; outcome unknown
    SETTLED = "settled"  # the transfer is on chain; the job exists
    FAILED = "failed"  # definitely not charged (simulation, signing or on-chain revert)

    @property
    def is_final(self) -> bool:
        return self in (PaymentState.SETTLED, PaymentState.FAILED)


# The one place that says which state changes are legal; db/ledger_store.py builds its compare-and-set
# updates from it. A credit spend is inserted SETTLED; an on-chain charge always passes through SETTLING.
PAYMENT_TRANSITIONS: Transitions[PaymentState] = Transitions.of(
    {
        PaymentState.RESERVED: {PaymentState.SETTLING, PaymentState.FAILED},
        PaymentState.SETTLING: {PaymentState.SETTLED, PaymentState.FAILED},
        PaymentState.FAILED: {PaymentState.RESERVED},  # the same authorization may be retried after a top-up
    }
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_webhook_secret() -> str:
    """A job's own webhook signing secret, in the Standard Webhooks form `whsec_<base64 of 32 bytes>`: each
    receiver can verify its deliveries and can never sign another job's."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, slots=True)
class PaymentKey:
    network: str
    payer: str
    nonce: str

    @classmethod
    def of(cls, network: str, payer: str, nonce: str) -> PaymentKey:
        return cls(network, account_key(payer), account_key(nonce))


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: str
    key: PaymentKey
    fingerprint: str
    route: str
    micros: int
    state: PaymentState
    created_at: float
    updated_at: float
    client_id: str | None = None
    asset: str | None = None
    amount: int | None = None
    pay_to: str | None = None
    valid_before: int | None = None
    tx_hash: str | None = None
    raw_tx: str | None = None
    reason: str | None = None
    payload: str | None = None
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the ledger writes into the jobs table, in the same transaction as the payment state."""

    id: str
    payer: str
    model: str
    operation: str
    request: str  # canonical JSON
    fingerprint: str
    micros: int
    callback_url: str | None = None
    webhook_secret: str | None = None  # set with callback_url; shown once, in the answer that paid for it
    # Most jobs wait for a worker; a paid upload slot is delivered the moment it is paid.
    status: str = "pending"
    result: str | None = None  # JSON, for jobs delivered at once
