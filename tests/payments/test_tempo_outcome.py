"""The outcome rules of an MPP Tempo charge (pure: chain facts in, outcome out)."""

from __future__ import annotations

import pytest

from studio402.payments.methods.tempo_outcome import TempoTxFacts, decide_tempo
from studio402.payments.outcome import SettleStatus

VALID_BEFORE = 1_000


@pytest.mark.parametrize(
    ("facts", "status", "reason"),
    [
        (TempoTxFacts("0xa", mined=True, pays=True), SettleStatus.SETTLED, None),
        (
            TempoTxFacts("0xa", mined=True, pays=False, chain_time=10),
            SettleStatus.REVERTED,
            "transaction_failed",
        ),
        (TempoTxFacts("0xa", mined=False, chain_time=VALID_BEFORE), SettleStatus.REVERTED, "payment-expired"),
        (TempoTxFacts("0xa", mined=False, pending=True, chain_time=VALID_BEFORE), SettleStatus.UNKNOWN, None),
        (TempoTxFacts("0xa", mined=False, chain_time=VALID_BEFORE - 1), SettleStatus.UNKNOWN, None),
        (TempoTxFacts("0xa", mined=False, chain_time=None), SettleStatus.UNKNOWN, None),
    ],
)
def test_decide(facts: TempoTxFacts, status: SettleStatus, reason: str | None) -> None:
    outcome = decide_tempo(facts, VALID_BEFORE)
    assert (outcome.status, outcome.reason, outcome.tx_hash) == (status, reason, "0xa")
