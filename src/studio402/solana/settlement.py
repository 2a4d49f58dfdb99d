"""Settling x402 `exact` SVM payments: submit the co-signed transaction, confirm, and decide the outcome from
chain facts only (mirroring payments/outcome.py for EIP-3009).

The facts are two reads, in this order: is the transaction's blockhash still valid, then the transaction's
signature status. The order matters: a blockhash seen expired *before* a status was looked for means the
transaction can never land, so "no status" then proves it never will.
1. a status without error -> settled (the transaction was verified to carry exactly the quoted transfer, and a
   Solana transaction is atomic);
2. a status with an error -> not charged (the transaction ran and failed; its signature is spent);
3. no status and the blockhash expired -> not charged;
4. anything else -> unknown: ask again later (the reconciler re-sends the same bytes meanwhile).
A node's error text never decides. Every copy of one transaction has one signature, so a duplicate is
answered by the first one's status and can never pay twice."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from solders.transaction import VersionedTransaction

from studio402.chain.errors import RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc
from studio402.errors import ChainError
from studio402.payments.methods.svm_exact import Reason, SvmVerifiedPayment
from studio402.payments.outcome import SettleOutcome, SettleStatus

if TYPE_CHECKING:
    from studio402.payments.interfaces import OnSigned

_POLL_SECONDS = 0.05
_RESEND_SECONDS = 2.0
_PREFLIGHT_REFUSED = -32002  # the node simulated the transaction, it failed, and it was not forwarded


@dataclass(frozen=True, slots=True)
class SvmFacts:
    signature: str
    found: bool  # the chain has a status for the signature
    err: str | None = None  # the status's error (None: succeeded)
    blockhash_valid: bool = True  # read before the status


def decide(facts: SvmFacts) -> SettleOutcome:
    """The settlement outcome the chain facts prove (see the module docstring)."""
    if facts.found and facts.err is None:
        return SettleOutcome(SettleStatus.SETTLED, facts.signature)
    if facts.found:
        return SettleOutcome(SettleStatus.REVERTED, facts.signature, Reason.TRANSACTION_FAILED.value)
    if not facts.blockhash_valid:
        return SettleOutcome(SettleStatus.REVERTED, facts.signature, Reason.BLOCKHASH_EXPIRED.value)
    return SettleOutcome(SettleStatus.UNKNOWN, facts.signature)


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A fully signed transaction as the chain will know it."""

    signature: str
    blockhash: str
    raw: bytes

    @classmethod
    def of(cls, tx: VersionedTransaction) -> SignedTx:
        return cls(str(tx.signatures[0]), str(tx.message.recent_blockhash), bytes(tx))

    @classmethod
    def of_payment(cls, payment: SvmVerifiedPayment) -> SignedTx:
        return cls.of(payment.transaction)


class SvmSettler:
    """The `SvmSettlement` port over a Solana JSON-RPC endpoint. The transaction arrives co-signed by the
    method (our fee-payer signature is part of the verified payment), so no key lives here. `submit` and
    `outcome` serve any of our transactions (refunds too)."""

    def __init__(self, rpc: AsyncRpc, *, commitment: str = "confirmed") -> None:
        self._rpc = rpc
        self._commitment = commitment

    async def facts(self, tx: SignedTx) -> SvmFacts:
        valid = await self._rpc.request("isBlockhashValid", [tx.blockhash, {"commitment": self._commitment}])
        statuses = await self._rpc.request(
            "getSignatureStatuses", [[tx.signature], {"searchTransactionHistory": True}]
        )
        status: Any = statuses["value"][0]
        if status is None:
            return SvmFacts(tx.signature, False, blockhash_valid=bool(valid["value"]))
        err = status.get("err")
        return SvmFacts(tx.signature, True, None if err is None else str(err), bool(valid["value"]))

    async def simulate(self, payment: SvmVerifiedPayment) -> str | None:
        tx = SignedTx.of_payment(payment)
        valid = await self._rpc.request("isBlockhashValid", [tx.blockhash, {"commitment": self._commitment}])
        if not valid["value"]:
            return Reason.BLOCKHASH_EXPIRED.value
        result = await self._rpc.request(
            "simulateTransaction",
            [_b64(tx), {"encoding": "base64", "sigVerify": True, "commitment": self._commitment}],
        )
        return None if result["value"]["err"] is None else Reason.SIMULATION_FAILED.value

    async def settle(
        self, payment: SvmVerifiedPayment, *, on_signed: OnSigned, timeout: float
    ) -> SettleOutcome:
        tx = SignedTx.of_payment(payment)
        await on_signed(tx.signature, tx.raw)
        return await self.submit(tx, timeout)

    async def lookup(
        self, payment: SvmVerifiedPayment, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome:
        return await self.outcome(SignedTx.of_payment(payment))

    async def submit(self, tx: SignedTx, timeout: float) -> SettleOutcome:
        """Send `tx` (unless the chain already decided it) and wait up to `timeout` for its outcome.
        Raises ChainError only when the node refused it before forwarding it (nothing charged)."""
        facts = await self.facts(tx)
        if facts.found or not facts.blockhash_valid:
            return decide(facts)  # a duplicate (or a transaction that can no longer land): never sent again
        try:
            await self._send(tx)
        except RpcError as exc:
            if exc.rpc_code == _PREFLIGHT_REFUSED:
                facts = await self.facts(tx)
                if facts.found or not facts.blockhash_valid:
                    return decide(facts)
                raise ChainError(
                    f"the node refused the transaction: {exc.rpc_message}", code="svm_send_refused"
                ) from None
            # any other answer may hide a forwarded transaction: confirm from chain facts
        except RpcUnavailable as exc:
            if not exc.request_sent:
                raise
        return await self._confirm(tx, timeout)

    async def outcome(self, tx: SignedTx) -> SettleOutcome:
        """The reconciler's question: decided from chain facts; re-sends the same bytes while unknown."""
        outcome = decide(await self.facts(tx))
        if outcome.status is SettleStatus.UNKNOWN:
            await self._resend(tx)
        return outcome

    async def _confirm(self, tx: SignedTx, timeout: float) -> SettleOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_send = loop.time() + _RESEND_SECONDS
        while True:
            outcome = decide(await self.facts(tx))
            if outcome.status is not SettleStatus.UNKNOWN or loop.time() >= deadline:
                return outcome
            if loop.time() >= next_send:
                await self._resend(tx)
                next_send = loop.time() + _RESEND_SECONDS
            await asyncio.sleep(_POLL_SECONDS)

    async def _send(self, tx: SignedTx) -> None:
        # Preflight on: a transaction the node's simulation refuses is not forwarded (nothing charged).
        options = {"encoding": "base64", "preflightCommitment": self._commitment, "maxRetries": 0}
        await self._rpc.request("sendTransaction", [_b64(tx), options])

    async def _resend(self, tx: SignedTx) -> None:
        """The same bytes again: a transaction lands at most once, so this can only help it land."""
        try:
            await self._send(tx)
        except ChainError:
            pass  # the next facts decide; a refusal text proves nothing


def _b64(tx: SignedTx) -> str:
    return base64.b64encode(tx.raw).decode()
