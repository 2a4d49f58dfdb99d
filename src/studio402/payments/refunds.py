"""Refunds: when a paid job fails, is moderated, or is canceled before it started, the payer gets the money
back per the operator's policy: `onchain` (a token transfer from the refund wallet), `credit` (a balance
spent on their next call), or `none`. One refund per job at most; a reconciler finishes interrupted ones."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from studio402.config import RefundMethod
from studio402.errors import Studio402Error
from studio402.money import format_usd
from studio402.payments.ledger import PaymentRecord, new_id
from studio402.payments.methods.evm_exact import OnSigned, SettleOutcome, SettleStatus
from studio402.transitions import Transitions

log = logging.getLogger(__name__)


class RefundTaken(Studio402Error):
    """Another sender changed this refund first (compare-and-set lost): do not sign anything."""


class RefundState(StrEnum):
    PENDING = "pending"  # decided, nothing sent yet
    SENDING = "sending"  # a transfer may be on chain
    DONE = "done"
    FAILED = "failed"  # the transfer reverted; retried by the reconciler


# The one place that says which state changes are legal; db/refund_store.py builds its compare-and-set from
# it. A credit refund is inserted DONE. A transfer is recorded SENDING when signed (again when re-signed); a
# reverted one goes back to PENDING (FAILED is never stored) and is sent afresh. PENDING -> DONE: a sender
# that reports a settled transfer without having reported its signature is still believed.
REFUND_TRANSITIONS: Transitions[RefundState] = Transitions.of(
    {
        RefundState.PENDING: {RefundState.SENDING, RefundState.DONE, RefundState.PENDING},
        RefundState.SENDING: {RefundState.SENDING, RefundState.DONE, RefundState.PENDING},
    }
)


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: str
    job_id: str
    payment_id: str
    payer: str
    method: RefundMethod
    micros: int
    state: RefundState
    created_at: float
    updated_at: float
    network: str | None = None
    asset: str | None = None
    amount: int | None = None
    tx_hash: str | None = None
    raw_tx: str | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        """The `refund` object shown on the job."""
        return {
            "amount": format_usd(self.micros),
            "method": self.method.value,
            "tx": self.tx_hash,
            "status": self.state.value,
        }


class RefundSender(Protocol):
    """Sends refund transfers on one network (the chain port)."""

    async def send(self, to: str, amount: int, *, on_signed: OnSigned, timeout: float) -> SettleOutcome: ...

    async def lookup(
        self, to: str, amount: int, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome: ...


class RefundStore(Protocol):
    async def payment(self, payment_id: str) -> PaymentRecord | None: ...

    async def get_for_job(self, job_id: str) -> RefundRecord | None: ...

    async def create(self, record: RefundRecord) -> bool:
        """Insert (and show on the job); False when the job already has a refund."""
        ...

    async def credit(self, record: RefundRecord) -> bool:
        """Insert a DONE credit refund and add it to the payer's balance, atomically; False if one exists."""
        ...

    async def swap(self, expected: RefundRecord, record: RefundRecord) -> bool:
        """Compare-and-set: persist `record` (and the job's view) only if the stored refund is still
        `expected`; False when another sender changed it first."""
        ...

    async def unfinished(self) -> list[RefundRecord]: ...


@dataclass(frozen=True, slots=True)
class RefundRequest:
    job_id: str
    payment_id: str
    payer: str
    micros: int


class RefundService:
    def __init__(
        self,
        method: RefundMethod,
        store: RefundStore,
        senders: Mapping[tuple[str, str], RefundSender],
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.method = method
        self._store = store
        self._senders = {(net, asset.lower()): s for (net, asset), s in senders.items()}
        self._timeout = timeout
        self._clock = clock
        self._on_change = on_change
        self._sending: set[str] = set()  # refunds whose send is under way in this process

    async def refund(self, request: RefundRequest) -> RefundRecord | None:
        """Refund a job once. Returns its refund (existing or new), None under policy `none`."""
        existing = await self._store.get_for_job(request.job_id)
        if existing is not None:
            return existing
        if self.method is RefundMethod.NONE:
            return None
        payment = await self._store.payment(request.payment_id)
        if payment is None:
            return None
        now = self._clock()
        record = RefundRecord(
            id=new_id("ref"),
            job_id=request.job_id,
            payment_id=payment.id,
            payer=payment.key.payer,
            method=self.method,
            micros=payment.micros,
            state=RefundState.PENDING,
            created_at=now,
            updated_at=now,
        )
        if self.method is RefundMethod.CREDIT or not self._can_send(payment):
            # Credit when asked for, for credit payments, and on rails with no refund wallet (MPP on Tempo).
            record = replace(record, method=RefundMethod.CREDIT, state=RefundState.DONE)
            if not await self._store.credit(record):
                return await self._store.get_for_job(request.job_id)
            await self._changed(record)
            return record
        record = replace(record, network=payment.key.network, asset=payment.asset, amount=payment.amount)
        if not await self._store.create(record):
            return await self._store.get_for_job(request.job_id)
        self._sending.add(record.id)
        try:
            return await self._send(record)
        finally:
            self._sending.discard(record.id)

    async def reconcile(self) -> int:
        """Finish refunds a crash or an RPC failure interrupted. Returns how many are still open.

        Two senders (this reconciler and a request, or two processes) may pick the same refund: every state
        change is a compare-and-set, so only one of them signs a transfer and the other gives up."""
        still_open = 0
        for record in await self._store.unfinished():
            if record.id not in self._sending:
                record = await self._resume_logged(record)
            still_open += record.state is not RefundState.DONE
        return still_open

    async def _resume_logged(self, record: RefundRecord) -> RefundRecord:
        self._sending.add(record.id)
        try:
            return await self._resume(record)
        except Exception:
            log.exception("refund %s could not be resumed", record.id)
            return record
        finally:
            self._sending.discard(record.id)

    async def _resume(self, record: RefundRecord) -> RefundRecord:
        if record.state is RefundState.SENDING:
            sender = self._sender(record)
            assert record.amount is not None
            raw = bytes.fromhex(record.raw_tx) if record.raw_tx else None
            outcome = await sender.lookup(record.payer, record.amount, record.tx_hash, raw)
            return await self._apply(record, outcome)
        return await self._send(record)

    async def _send(self, record: RefundRecord) -> RefundRecord:
        sender = self._sender(record)
        assert record.amount is not None
        current = record

        async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
            nonlocal current
            signed = replace(
                current,
                state=RefundState.SENDING,
                tx_hash=tx_hash,
                raw_tx=raw.hex() if raw is not None else None,
                updated_at=self._clock(),
            )
            if not await self._store.swap(current, signed):  # nothing is broadcast then
                raise RefundTaken(f"refund {record.id} is being sent by another sender")
            current = signed

        try:
            outcome = await sender.send(
                record.payer, record.amount, on_signed=on_signed, timeout=self._timeout
            )
        except RefundTaken:
            return await self._store.get_for_job(record.job_id) or current
        except Exception:
            log.exception("refund %s not sent; the reconciler retries", record.id)
            return current
        return await self._apply(current, outcome)

    async def _apply(self, record: RefundRecord, outcome: SettleOutcome) -> RefundRecord:
        if outcome.status is SettleStatus.UNKNOWN:
            return record
        previous = record
        state = RefundState.DONE if outcome.status is SettleStatus.SETTLED else RefundState.FAILED
        record = replace(
            record,
            state=state,
            tx_hash=outcome.tx_hash or record.tx_hash,
            reason=outcome.reason,
            updated_at=self._clock(),
        )
        if state is RefundState.FAILED:  # nothing moved: try again from scratch next round
            record = replace(record, state=RefundState.PENDING, tx_hash=None, raw_tx=None)
        if not await self._store.swap(previous, record):
            return await self._store.get_for_job(record.job_id) or previous  # another sender decided
        await self._changed(record)
        return record

    def _can_send(self, payment: PaymentRecord) -> bool:
        return (payment.key.network, (payment.asset or "").lower()) in self._senders

    def _sender(self, record: RefundRecord) -> RefundSender:
        sender = self._senders.get((record.network or "", (record.asset or "").lower()))
        if sender is None:
            raise LookupError(f"no refund wallet for {record.network} {record.asset}")
        return sender

    async def _changed(self, record: RefundRecord) -> None:
        if self._on_change is not None:
            await self._on_change(record.job_id)
