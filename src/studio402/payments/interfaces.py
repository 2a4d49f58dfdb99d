"""The payment-method port: one way to pay (x402 `exact` on EVM today; Solana and MPP on Tempo plug in here).

The engine knows only this Protocol: a method matches its offer, verifies a payload offline, and settles
through its chain with outcomes decided from chain facts (payments/outcome.py). Refunds go through the
`RefundSender` port of payments/refunds.py. No I/O in this module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from x402.schemas import PaymentPayload

from studio402.payments.offers import Offer, Requirement
from studio402.payments.outcome import SettleOutcome
from studio402.payments.x402 import Resource

# Called before each broadcast with (tx hash, raw signed tx); (None, None) when someone else broadcasts
# (a remote facilitator) and the hash is only known afterwards.
OnSigned = Callable[[str | None, bytes | None], Awaitable[None]]


class Verified(Protocol):
    """A payment that passed its method's offline checks against one requirement."""

    @property
    def requirement(self) -> Requirement: ...

    @property
    def payer(self) -> str: ...

    @property
    def nonce(self) -> str:
        """What makes it unique on its rail (EIP-3009 nonce, transaction signature): the ledger key."""
        ...

    @property
    def valid_before(self) -> int:
        """Unix time after which it can no longer charge the payer (bounds an unknown outcome)."""
        ...

    def to_json(self) -> str:
        """What the ledger keeps to settle or look it up again after a restart."""
        ...


class PaymentMethod(Protocol):
    offer: Offer

    def claimed(self, payload: PaymentPayload) -> tuple[str, str, str] | None:
        """(payer, nonce, proof) a payload claims, unverified: the ledger answers replays before any check
        (a retry after the authorization expired still gets its job). None if it has no such shape."""
        ...

    def verify(self, payload: PaymentPayload, requirement: Requirement, now: float) -> Verified:
        """Offline checks (the accepted requirement is ours, amounts, times, signature); raises
        PaymentRejected / MalformedPayment."""
        ...

    def restore(self, requirement: Requirement, stored: str) -> Verified:
        """A verified payment back from the ledger's `to_json()`."""
        ...

    def same_proof(self, stored: str, proof: str) -> bool:
        """Does a replayed payload carry the proof (signature) this stored payment was made with?"""
        ...

    async def simulate(self, payment: Verified) -> str | None:
        """None when settling would succeed now, else the reason it would fail (nothing is sent)."""
        ...

    async def settle(self, payment: Verified, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        """Settle on chain; the outcome from chain facts. Raises ChainError only when nothing was sent."""
        ...

    async def lookup(self, payment: Verified, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        """What became of a settlement (the reconciler's question), from chain facts."""
        ...


class ChallengeIssuer(Protocol):
    """A payment method whose offer travels outside PAYMENT-REQUIRED (MPP: `WWW-Authenticate: Payment`)."""

    def www_authenticate(self, resource: Resource, micros: int, body_digest: str | None) -> str:
        """The header value offering `micros` for `resource`, bound to the request body's RFC 9530 digest."""
        ...
