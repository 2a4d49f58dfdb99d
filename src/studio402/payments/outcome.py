"""What became of a payment's settlement, decided from chain facts only (no I/O, no error texts).

This is the one place that decides whether a payer was charged. The rules (docs/decisions.md):
1. a successful transaction of ours whose receipt carries the quoted transfer -> settled;
2. an `AuthorizationUsed(payer, nonce)` emitted by a transaction (anyone's: a front-run is a payment) whose
   token transfer is the quoted one (payer -> payTo, amount) -> settled;
3. the authorization used for another transfer, or `AuthorizationCanceled(payer, nonce)` -> not charged;
4. the chain's latest block is at or past `validBefore` and no transaction of ours is pending -> not charged
   (the token refuses the authorization in every later block);
5. anything else -> unknown: ask again later.
A node's error message never enters here: it says nothing certain about what was broadcast."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SettleStatus(StrEnum):
    SETTLED = "settled"  # the quoted transfer is on chain
    REVERTED = "reverted"  # the payer was definitely not charged (and never can be with this authorization)
    UNKNOWN = "unknown"  # a transaction may still land; ask again later


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    status: SettleStatus
    tx_hash: str | None = None
    reason: str | None = None
    # UNKNOWN only: our transaction can never land (its nonce went to another one) and the authorization is
    # still open, so only a new transaction can settle it.
    stranded: bool = False


class NotCharged(StrEnum):
    """Why a settlement ended without charging the payer (x402-style reasons)."""

    CANCELED = "authorization_canceled"
    USED_ELSEWHERE = "invalid_exact_evm_nonce_already_used"
    EXPIRED = "invalid_exact_evm_payload_authorization_valid_before"


@dataclass(frozen=True, slots=True)
class OwnTx:
    """One of our settlement transactions as the chain shows it."""

    tx_hash: str
    mined: bool
    pays: bool = False  # mined, succeeded, and its receipt has the quoted transfer
    pending: bool = False  # not mined but known to the node (it may still land)


@dataclass(frozen=True, slots=True)
class AuthorizationUse:
    """A transaction that emitted AuthorizationUsed(payer, nonce), and whether it made the quoted transfer."""

    tx_hash: str
    pays: bool


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """Everything the decision needs. `logs_checked` is False when only our receipts were looked at (the fast
    path after a successful send): then only rule 1 can apply."""

    ours: tuple[OwnTx, ...] = ()
    uses: tuple[AuthorizationUse, ...] = ()
    canceled: bool = False
    chain_time: int | None = None  # timestamp of the latest block
    logs_checked: bool = False


def decide(facts: ChainFacts, valid_before: int) -> SettleOutcome:
    """The settlement outcome the chain facts prove (see the module docstring)."""
    for tx in facts.ours:
        if tx.pays:
            return SettleOutcome(SettleStatus.SETTLED, tx.tx_hash)
    if not facts.logs_checked:
        return SettleOutcome(SettleStatus.UNKNOWN, _latest_own(facts))
    for use in facts.uses:
        if use.pays:
            return SettleOutcome(SettleStatus.SETTLED, use.tx_hash)
    if facts.uses:
        return SettleOutcome(SettleStatus.REVERTED, _latest_own(facts), NotCharged.USED_ELSEWHERE.value)
    if facts.canceled:
        return SettleOutcome(SettleStatus.REVERTED, _latest_own(facts), NotCharged.CANCELED.value)
    expired = facts.chain_time is not None and facts.chain_time >= valid_before
    if expired and not any(tx.pending for tx in facts.ours):
        return SettleOutcome(SettleStatus.REVERTED, _latest_own(facts), NotCharged.EXPIRED.value)
    return SettleOutcome(SettleStatus.UNKNOWN, _latest_own(facts))


def _latest_own(facts: ChainFacts) -> str | None:
    return facts.ours[-1].tx_hash if facts.ours else None
