"""What became of an MPP Tempo charge, decided from chain facts only (no I/O, no error texts).

The payer signed one transaction; only that transaction (its hash) can charge them, and the chain refuses
it in every block at or after its `validBefore`. So:
1. its receipt succeeded and carries `Transfer(payer -> recipient, amount)` from the currency -> settled;
2. it was mined without that transfer (reverted) -> not charged (a mined transaction never lands again);
3. the latest block's timestamp is at or past `validBefore` and the node does not hold it pending ->
   not charged (expired);
4. anything else -> unknown: ask again later (the reconciler re-sends the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studio402.payments.outcome import SettleOutcome, SettleStatus


class TempoNotCharged(StrEnum):
    REVERTED = "transaction_failed"
    EXPIRED = "payment-expired"


@dataclass(frozen=True, slots=True)
class TempoTxFacts:
    tx_hash: str
    mined: bool
    pays: bool = False  # mined, succeeded, and its receipt has the quoted transfer
    pending: bool = False  # not mined but known to the node
    chain_time: int | None = None  # timestamp of the latest block (None: not read)


def decide_tempo(facts: TempoTxFacts, valid_before: int) -> SettleOutcome:
    if facts.pays:
        return SettleOutcome(SettleStatus.SETTLED, facts.tx_hash)
    if facts.mined:
        return SettleOutcome(SettleStatus.REVERTED, facts.tx_hash, TempoNotCharged.REVERTED.value)
    expired = facts.chain_time is not None and facts.chain_time >= valid_before
    if expired and not facts.pending:
        return SettleOutcome(SettleStatus.REVERTED, facts.tx_hash, TempoNotCharged.EXPIRED.value)
    return SettleOutcome(SettleStatus.UNKNOWN, facts.tx_hash)
