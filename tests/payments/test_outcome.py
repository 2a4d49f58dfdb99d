"""The one decision of whether a payer was charged, from chain facts only."""

from __future__ import annotations

import pytest

from studio402.payments.outcome import (
    AuthorizationUse,
    ChainFacts,
    NotCharged,
    OwnTx,
    SettleStatus,
    decide,
)

VALID_BEFORE = 1_000


def facts(**kwargs: object) -> ChainFacts:
    return ChainFacts(**{"logs_checked": True, "chain_time": 500, **kwargs})  # type: ignore[arg-type]


def test_our_paying_receipt_settles_without_logs() -> None:
    outcome = decide(ChainFacts(ours=(OwnTx("0xa", mined=True, pays=True),)), VALID_BEFORE)
    assert (outcome.status, outcome.tx_hash) == (SettleStatus.SETTLED, "0xa")


def test_without_logs_nothing_but_our_receipt_can_decide() -> None:
    expired = ChainFacts(ours=(OwnTx("0xa", mined=True),), chain_time=5_000)
    assert decide(expired, VALID_BEFORE).status is SettleStatus.UNKNOWN


def test_a_front_run_is_a_payment() -> None:
    """Our transaction reverted because a bystander landed the same authorization first."""
    outcome = decide(
        facts(ours=(OwnTx("0xours", mined=True),), uses=(AuthorizationUse("0xthief", pays=True),)),
        VALID_BEFORE,
    )
    assert (outcome.status, outcome.tx_hash) == (SettleStatus.SETTLED, "0xthief")


def test_a_cancellation_is_not_a_payment() -> None:
    outcome = decide(facts(ours=(OwnTx("0xours", mined=True),), canceled=True), VALID_BEFORE)
    assert (outcome.status, outcome.reason) == (SettleStatus.REVERTED, NotCharged.CANCELED.value)


def test_the_nonce_used_for_another_transfer_is_not_a_payment() -> None:
    outcome = decide(facts(uses=(AuthorizationUse("0xother", pays=False),)), VALID_BEFORE)
    assert (outcome.status, outcome.reason) == (SettleStatus.REVERTED, NotCharged.USED_ELSEWHERE.value)


@pytest.mark.parametrize(
    ("chain_time", "pending", "status"),
    [
        (999, False, SettleStatus.UNKNOWN),  # still valid: anyone may land it
        (1_000, True, SettleStatus.UNKNOWN),  # expired, but a transaction of ours is still pending
        (1_000, False, SettleStatus.REVERTED),  # expired by the chain's clock, nothing of ours pending
        (None, False, SettleStatus.UNKNOWN),  # no clock read: no decision
    ],
)
def test_expiry_is_judged_by_the_chain_clock(
    chain_time: int | None, pending: bool, status: SettleStatus
) -> None:
    ours = (OwnTx("0xours", mined=False, pending=pending),)
    assert decide(facts(ours=ours, chain_time=chain_time), VALID_BEFORE).status is status


def test_a_reverted_transaction_of_ours_alone_proves_nothing() -> None:
    """Reverted, nothing used or canceled, still valid: a copy of the authorization may still land."""
    outcome = decide(facts(ours=(OwnTx("0xours", mined=True),)), VALID_BEFORE)
    assert (outcome.status, outcome.tx_hash) == (SettleStatus.UNKNOWN, "0xours")
