"""The payment engine: quote -> challenge -> verify -> reserve -> settle -> job, and the reconciler.

Money rules it enforces (architecture.md, "The request path"):
- a payment key (network, payer, nonce) is reserved once; the same payment with the same request returns
  the same job and never charges again; with another request it is a 409;
- the job row is written in the transaction that records the settlement transaction (held until settled);
- once a settlement transaction may have been broadcast we never answer 402: the outcome is either known
  (settled / reverted) or left to the reconciler (202 with the job id).
No I/O here except through the ledger and settlement ports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from x402.extensions.payment_identifier import extract_payment_identifier, is_valid_payment_id
from x402.schemas import PaymentPayload

from studio402.catalog import ValidatedRequest
from studio402.errors import (
    ChainError,
    ConflictError,
    MalformedPayment,
    PaymentConflict,
    PaymentRejected,
    PaymentRequired,
    Studio402Error,
)
from studio402.payments import x402
from studio402.payments.challenges import Challenges, ExtensionsFor
from studio402.payments.interfaces import ChallengeIssuer, OnSigned, PaymentMethod, Verified
from studio402.payments.ledger import (
    CREDIT_NETWORK,
    PaymentKey,
    PaymentRecord,
    PaymentState,
    new_id,
)
from studio402.payments.methods.evm_exact import Reason
from studio402.payments.offers import Offer, Requirement
from studio402.payments.outcome import SettleOutcome, SettleStatus
from studio402.payments.paid import Paid, fresh, new_job
from studio402.payments.ports import LedgerStore

log = logging.getLogger(__name__)
JobReady = Callable[[str], Awaitable[None]]


async def _no_job_hook(job_id: str) -> None:
    return None


class SettlementTaken(Studio402Error):
    """Another request or reconciler replaced this settlement's transaction first: sign nothing."""


class PaymentEngine:
    def __init__(
        self,
        offers: Sequence[Offer],
        methods: Sequence[PaymentMethod] = (),
        ledger: LedgerStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        settle_timeout: float = 30.0,
        job_ready: JobReady = _no_job_hook,
        extensions_for: ExtensionsFor | None = None,
        issuers: Sequence[ChallengeIssuer] = (),
    ) -> None:
        self.offers = tuple(offers)
        self.challenges = Challenges(offers, extensions_for=extensions_for, issuers=issuers)
        self._methods = {(m.offer.network, m.offer.asset.address.lower()): m for m in methods}
        self._ledger = ledger
        self._clock = clock
        self._settle_timeout = settle_timeout
        self._job_ready = job_ready
        self._changed: dict[str, asyncio.Event] = {}

    # -- challenges ------------------------------------------------------------------------------------------

    def requirements(self, micros: int) -> list[Requirement]:
        return self.challenges.requirements(micros)

    def payment_required(
        self,
        resource: x402.Resource,
        micros: int,
        *,
        error: str | None = None,
        detail: str | None = None,
        body_digest: str | None = None,
    ) -> PaymentRequired:
        return self.challenges.payment_required(
            resource, micros, error=error, detail=detail, body_digest=body_digest
        )

    def rejected(self, reason: str, detail: str, resource: x402.Resource, micros: int) -> PaymentRejected:
        return self.challenges.rejected(reason, detail, resource, micros)

    # -- paying ----------------------------------------------------------------------------------------------

    async def pay(
        self,
        header: str,
        request: ValidatedRequest,
        micros: int,
        resource: x402.Resource,
        *,
        v1: bool = False,
    ) -> Paid:
        """Verify, reserve and settle the payment in `header` (PAYMENT-SIGNATURE, or X-PAYMENT with `v1`)
        for this request; return its job."""
        payload = (
            x402.decode_v1_payment(header, self.requirements(micros)) if v1 else x402.decode_payment(header)
        )
        return await self.pay_payload(payload, request, micros, resource)

    async def pay_payload(
        self, payload: PaymentPayload, request: ValidatedRequest, micros: int, resource: x402.Resource
    ) -> Paid:
        """The same for a decoded payload: an x402 one, or another protocol's credential that its edge put
        in this shape (`accepted` names the method's offer, `payload` carries the credential)."""
        method, requirement = self._match(payload, micros, resource)
        # A payment already in the ledger answers with its job whatever the clock says now (a client that
        # lost our answer retries the same header, maybe after the authorization expired).
        replayed = await self._replay(payload, method, requirement, request)
        if replayed is not None:
            return replayed
        try:
            payment = method.verify(payload, requirement, self._clock())
        except PaymentRejected as exc:
            raise self.rejected(exc.code, exc.detail, resource, micros) from None
        client_id = _client_id(payload)
        ledger = self._need_ledger()
        key = PaymentKey.of(requirement.network, payment.payer, payment.nonce)
        for _ in range(5):
            # Claim the payment first (one INSERT on the common path); a taken key or client id means a
            # replay or a concurrent duplicate, answered from the existing record.
            record = self._new_record(key, payment, request, micros, client_id)
            if await ledger.reserve(record):
                return await self._check_and_settle(record, payment, method, request, micros, resource)
            existing = await ledger.get(key)
            if existing is None and client_id is not None:
                existing = await ledger.get_by_client_id(payment.payer, client_id)
            if existing is not None:
                paid = await self._existing(existing, key, request, micros, resource, method, payment)
                if paid is not None:
                    return paid
        raise ConflictError("this payment is contended; retry shortly", code="payment_in_progress")

    async def _replay(
        self,
        payload: PaymentPayload,
        method: PaymentMethod,
        requirement: Requirement,
        request: ValidatedRequest,
    ) -> Paid | None:
        """The job of this exact payment if the ledger has it (and it did not fail)."""
        claimed = method.claimed(payload)
        if claimed is None:
            return None
        payer, nonce, proof = claimed
        record = await self._need_ledger().get(PaymentKey.of(requirement.network, payer, nonce))
        if record is None or record.state is PaymentState.FAILED or record.payload is None:
            return None
        if not method.same_proof(record.payload, proof):
            return None
        if record.fingerprint != request.fingerprint:
            raise PaymentConflict("this payment was already used for another request", job_id=record.job_id)
        record = await self._wait_for_outcome(record)
        if record.state is PaymentState.FAILED:
            return None  # verified and retried below like a new attempt
        if record.state is PaymentState.RESERVED:
            raise ConflictError(
                "this payment is being settled by another request; retry shortly", code="payment_in_progress"
            )
        return self._paid(record)

    @staticmethod
    def _paid(record: PaymentRecord) -> Paid:
        assert record.job_id is not None
        return Paid(
            record.job_id,
            record.key.payer,
            record.key.network,
            record.tx_hash,
            settled=record.state is PaymentState.SETTLED,
            replay=True,
        )

    async def _check_and_settle(
        self,
        record: PaymentRecord,
        payment: Verified,
        method: PaymentMethod,
        request: ValidatedRequest,
        micros: int,
        resource: x402.Resource,
    ) -> Paid:
        """Settle a payment this request holds (reserved or reopened), if the chain says it would succeed."""
        try:
            reason = await method.simulate(payment)
            # The transfer would fail: maybe because someone already landed this very authorization (a copy
            # of it reached the chain first). That is a payment to us; only chain facts can tell.
            elsewhere = None if reason is None else await method.lookup(payment, None, None)
        except ChainError:  # cannot check now: free the payment for a retry
            await self._fail(record.id, "settlement_unavailable")
            raise
        if elsewhere is not None and elsewhere.status is SettleStatus.SETTLED:
            return await self._shielded(self._record_settled(record, payment, request, elsewhere.tx_hash))
        if reason is not None:
            await self._fail(record.id, reason)
            raise self.rejected(reason, f"the payment would fail on chain: {reason}", resource, micros)
        return await self._shielded(self._settle(record, payment, method, request, resource))

    async def _record_settled(
        self, record: PaymentRecord, payment: Verified, request: ValidatedRequest, tx_hash: str | None
    ) -> Paid:
        """The authorization was used for the quoted transfer by a transaction not ours: record it as paid."""
        ledger = self._need_ledger()
        job = new_job(request, payment.payer, record.micros)
        await ledger.begin_settlement(record.id, tx_hash, None, job, self._clock())
        await ledger.finish_settlement(record.id, tx_hash, self._clock())
        self._notify(record.id)
        await self._job_ready(job.id)
        return fresh(job, record.key.network, tx_hash, settled=True)

    async def _existing(
        self,
        record: PaymentRecord,
        key: PaymentKey,
        request: ValidatedRequest,
        micros: int,
        resource: x402.Resource,
        method: PaymentMethod,
        payment: Verified,
    ) -> Paid | None:
        if record.fingerprint != request.fingerprint:
            raise PaymentConflict(
                "this payment (or payment identifier) was already used for another request",
                job_id=record.job_id,
            )
        record = await self._wait_for_outcome(record)
        if record.state is PaymentState.FAILED:
            if record.key != key:
                # A failed earlier attempt under the same client id: this new authorization may take the id.
                await self._need_ledger().release_client_id(record.id)
                return None
            if not await self._need_ledger().reopen(record.id, self._clock()):
                return None
            return await self._check_and_settle(record, payment, method, request, micros, resource)
        if record.state is PaymentState.RESERVED:
            raise ConflictError(
                "this payment is being settled by another request; retry shortly", code="payment_in_progress"
            )
        return self._paid(record)

    @staticmethod
    async def _shielded(settling: Coroutine[Any, Any, Paid]) -> Paid:
        """Once a settlement starts it runs to its end even if the client goes away: a half-done
        settlement would leave money moved without a job."""
        return await asyncio.shield(asyncio.ensure_future(settling))

    async def _settle(
        self,
        record: PaymentRecord,
        payment: Verified,
        method: PaymentMethod,
        request: ValidatedRequest,
        resource: x402.Resource,
    ) -> Paid:
        ledger = self._need_ledger()
        job = new_job(request, payment.payer, record.micros)
        replace: OnSigned | None = None

        async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
            nonlocal replace
            if replace is not None:  # re-signed after a nonce conflict: the node refused the previous one
                await replace(tx_hash, raw)
                return
            raw_hex = raw.hex() if raw is not None else None
            await ledger.begin_settlement(record.id, tx_hash, raw_hex, job, self._clock())
            replace = self._replacer(record.id, tx_hash)

        try:
            outcome = await method.settle(payment, on_signed=on_signed, timeout=self._settle_timeout)
        except SettlementTaken:  # the reconciler re-settles it
            return fresh(job, record.key.network, None, settled=False)
        except ChainError:
            # The node refused it before its pool (the port's contract): not charged, the payer may retry.
            await self._fail(record.id, "settlement_unavailable")
            raise
        # Any other exception leaves the record as it is (reserved, or settling with its transaction):
        # the reconciler finds out what happened on chain.
        if outcome.status is SettleStatus.SETTLED:
            try:
                await ledger.finish_settlement(record.id, outcome.tx_hash, self._clock())
            except Exception:  # the money moved: never an error page now; the reconciler records it
                log.exception("recording settlement %s failed; left to the reconciler", record.id)
                return fresh(job, record.key.network, outcome.tx_hash, settled=False)
            self._notify(record.id)
            await self._job_ready(job.id)
            return fresh(job, record.key.network, outcome.tx_hash, settled=True)
        if outcome.status is SettleStatus.REVERTED:
            # Chain facts prove this authorization can never charge the payer (canceled, used for another
            # transfer, or expired): a definite "not charged".
            reason = outcome.reason or Reason.TRANSACTION_FAILED.value
            await self._fail(record.id, reason)
            raise self.rejected(
                reason, "the payment did not go through; nothing was charged", resource, record.micros
            )
        self._notify(record.id)
        log.warning(
            "settlement of %s pending (tx %s): the reconciler will finish it", record.id, outcome.tx_hash
        )
        return fresh(job, record.key.network, outcome.tx_hash, settled=False)

    async def pay_with_credit(
        self, payer: str, nonce: str, request: ValidatedRequest, micros: int
    ) -> Paid | None:
        """Spend the payer's refund credit (proved by a SIWX sign-in whose nonce keys the spend).
        None when the balance does not cover the price."""
        ledger = self._need_ledger()
        key = PaymentKey.of(CREDIT_NETWORK, payer, nonce)
        for _ in range(2):
            existing = await ledger.get(key)
            if existing is not None:
                if existing.fingerprint != request.fingerprint:
                    raise PaymentConflict("this sign-in was already spent on another request")
                assert existing.job_id is not None
                return Paid(existing.job_id, payer, CREDIT_NETWORK, None, settled=True, replay=True)
            job = new_job(request, key.payer, micros)
            now = self._clock()
            record = PaymentRecord(
                id=new_id("pay"),
                key=key,
                fingerprint=request.fingerprint,
                route=request.route.key,
                micros=micros,
                state=PaymentState.SETTLED,
                created_at=now,
                updated_at=now,
                job_id=job.id,
            )
            if await ledger.spend_credit(record, job):
                await self._job_ready(job.id)
                return fresh(job, CREDIT_NETWORK, None, settled=True)
            if await ledger.get(key) is None:
                return None  # not enough credit
        return None

    # -- reconciling -----------------------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, int]:
        """Resolve payments whose settlement outcome was unknown (start-up and periodically)."""
        ledger = self._need_ledger()
        counts = {"settled": 0, "failed": 0, "pending": 0}
        # Reserved but never signed (the request died before broadcasting): nothing was charged.
        for record in await ledger.stale_reserved(self._clock() - 2 * self._settle_timeout - 30):
            await self._fail(record.id, "abandoned")
            counts["failed"] += 1
        for record in await ledger.settling():
            method = self._methods.get((record.key.network, (record.asset or "").lower()))
            if method is None or record.payload is None:
                counts["pending"] += 1
                continue
            # The amount paid: the receipt of our transaction is judged against it.
            payment = method.restore(method.offer.requirement(record.micros), record.payload)
            raw = bytes.fromhex(record.raw_tx) if record.raw_tx else None
            try:
                outcome = await method.lookup(payment, record.tx_hash, raw)
                if outcome.stranded and record.updated_at < self._clock() - self._settle_timeout:
                    outcome = await self._resettle(record, method, payment)
            except ChainError as exc:  # this record waits for the next pass; the others go on
                log.warning("reconciling payment %s: %s", record.id, exc.detail)
                counts["pending"] += 1
                continue
            if outcome.status is SettleStatus.SETTLED:
                await ledger.finish_settlement(record.id, outcome.tx_hash, self._clock())
                if record.job_id:
                    await self._job_ready(record.job_id)
                counts["settled"] += 1
            elif outcome.status is SettleStatus.REVERTED:
                await ledger.fail(
                    record.id, outcome.reason or Reason.TRANSACTION_FAILED.value, self._clock(), keep_job=True
                )
                counts["failed"] += 1
            else:
                counts["pending"] += 1
            self._notify(record.id)
        return counts

    async def _resettle(
        self, record: PaymentRecord, method: PaymentMethod, payment: Verified
    ) -> SettleOutcome:
        """Our recorded transaction can never land (its nonce went to another transaction: a process died
        between signing and broadcasting) while the authorization is still open: settle it again with a
        new transaction. The token lets the authorization move money once, whichever lands."""
        log.warning("settlement %s of %s can never land: settling again", record.tx_hash, record.id)
        try:
            return await method.settle(
                payment, on_signed=self._replacer(record.id, record.tx_hash), timeout=self._settle_timeout
            )
        except SettlementTaken:  # another reconciler got there first
            return SettleOutcome(SettleStatus.UNKNOWN, record.tx_hash)

    def _replacer(self, payment_id: str, previous: str | None) -> OnSigned:
        """An `on_signed` that records each re-signed transaction in place of the one before it, and stops
        the broadcast (SettlementTaken) if another process replaced or decided the settlement first."""

        async def replace(tx_hash: str | None, raw: bytes | None) -> None:
            nonlocal previous
            if tx_hash is None or raw is None:
                return
            ledger, now = self._need_ledger(), self._clock()
            if not await ledger.replace_settlement_tx(payment_id, previous, tx_hash, raw.hex(), now):
                raise SettlementTaken(f"settlement of {payment_id} was taken over")
            previous = tx_hash

        return replace

    # -- helpers ---------------------------------------------------------------------------------------------

    def _need_ledger(self) -> LedgerStore:
        if self._ledger is None:
            raise AssertionError("payment engine built without a ledger")
        return self._ledger

    def _match(
        self, payload: PaymentPayload, micros: int, resource: x402.Resource
    ) -> tuple[PaymentMethod, Requirement]:
        accepted = payload.accepted
        method = self._methods.get((accepted.network, accepted.asset.lower()))
        if method is None:
            reason = (
                Reason.INVALID_REQUIREMENTS
                if any(o.network == accepted.network for o in self.offers)
                else Reason.INVALID_NETWORK
            )
            raise self.rejected(
                reason.value, f"we do not accept {accepted.asset} on {accepted.network}", resource, micros
            )
        return method, method.offer.requirement(micros)

    def _new_record(
        self,
        key: PaymentKey,
        payment: Verified,
        request: ValidatedRequest,
        micros: int,
        client_id: str | None,
    ) -> PaymentRecord:
        now = self._clock()
        req = payment.requirement
        return PaymentRecord(
            id=new_id("pay"),
            key=key,
            fingerprint=request.fingerprint,
            route=request.route.key,
            micros=micros,
            state=PaymentState.RESERVED,
            created_at=now,
            updated_at=now,
            client_id=client_id,
            asset=req.asset,
            amount=req.amount,
            pay_to=req.pay_to,
            valid_before=payment.valid_before,
            payload=payment.to_json(),
        )

    async def _fail(self, payment_id: str, reason: str, *, keep_job: bool = False) -> None:
        await self._need_ledger().fail(payment_id, reason, self._clock(), keep_job=keep_job)
        self._notify(payment_id)

    def _notify(self, payment_id: str) -> None:
        event = self._changed.pop(payment_id, None)
        if event is not None:
            event.set()

    async def _wait_for_outcome(self, record: PaymentRecord) -> PaymentRecord:
        """A concurrent request is settling this payment: wait (bounded by the settle timeout from its last
        change) for the outcome, so duplicates answer like the original. Stale ones go to the reconciler."""
        deadline = record.updated_at + self._settle_timeout + 5
        while not record.state.is_final and self._clock() < deadline:
            event = self._changed.setdefault(record.id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), 0.05)  # other processes only show in the database
            except TimeoutError:
                pass
            fresh = await self._need_ledger().get_by_id(record.id)
            assert fresh is not None
            record = fresh
        return record


def _client_id(payload: PaymentPayload) -> str | None:
    """The x402 payment-identifier a client reuses across its retries (validated), if any."""
    value = extract_payment_identifier(payload, validate=False)
    if value is not None and not is_valid_payment_id(value):
        raise MalformedPayment(
            "payment-identifier ids are 16-128 characters of [A-Za-z0-9_-]", code="invalid_payload"
        )
    return value
