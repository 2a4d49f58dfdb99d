"""Webhook deliveries as values: their states, the one table of legal state changes, and the rows the
sender records and reads back (no I/O here; db/webhook_store.py stores them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studio402.transitions import Transitions


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at `next_at` (first try or a retry)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up: refused target, a final status, or out of attempts


# PENDING -> PENDING: an attempt failed and is retried later.
DELIVERY_TRANSITIONS: Transitions[DeliveryState] = Transitions.of(
    {DeliveryState.PENDING: {DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.FAILED}}
)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A job's terminal event, recorded once per (job, event) and delivered from then on."""

    id: str  # also the `webhook-id` header: receivers dedupe on it
    job_id: str
    event: str
    url: str
    payload: str
    created_at: float


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: str
    url: str
    payload: str
    attempts: int
    webhook_secret: str | None  # the job's own secret; None for a job the engine did not make


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The outcome of one attempt, written only if the delivery is still as it was read."""

    state: DeliveryState
    attempts: int
    last_status: int | None
    last_error: str | None
    next_at: float
    updated_at: float
