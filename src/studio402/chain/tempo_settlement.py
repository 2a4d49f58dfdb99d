"""Settling MPP Tempo charges: broadcast the payer's signed transaction through a Tempo RPC, then decide
the outcome from chain facts (payments/methods/tempo_outcome.py), never from a node's error text.

`eth_sendRawTransactionSync` is sent with the raw transaction only (anvil 1.7.1 refuses the optional
timeout argument); a node without it (-32601: nothing was broadcast) gets `eth_sendRawTransaction` and a
receipt poll. `before_broadcast` is a devnet hook (TempoDevnet.reset_expiring_nonce), None on real chains."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from studio402.chain.errors import ExecutionReverted, RpcError
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import transfers_in_receipt
from studio402.errors import ChainError
from studio402.payments.interfaces import OnSigned
from studio402.payments.methods.tempo_charge import TempoCharge
from studio402.payments.methods.tempo_outcome import TempoTxFacts, decide_tempo
from studio402.payments.outcome import SettleOutcome, SettleStatus

_METHOD_NOT_FOUND = -32601
BeforeBroadcast = Callable[[str], Awaitable[None]]


def receipt_pays(receipt: dict[str, Any], charge: TempoCharge) -> bool:
    """The receipt is of this transaction, succeeded, and moved exactly the quoted amount to the recipient."""
    if not receipt_succeeded(receipt) or str(receipt.get("transactionHash", "")).lower() != charge.tx_hash:
        return False
    return any(
        t.sender.lower() == charge.payer.lower()
        and t.receiver.lower() == charge.recipient.lower()
        and t.value == charge.amount
        for t in transfers_in_receipt(receipt, charge.currency)
    )


class TempoSettler:
    def __init__(self, rpc: AsyncRpc, *, before_broadcast: BeforeBroadcast | None = None) -> None:
        self._rpc = rpc
        self._before_broadcast = before_broadcast

    async def simulate(self, charge: TempoCharge) -> str | None:
        """None when the payer's transfer would succeed now (balance), else why not (nothing is sent)."""
        data = "0xa9059cbb" + charge.recipient[2:].lower().rjust(64, "0") + f"{charge.amount:064x}"
        try:
            await self._rpc.request("eth_call", [{"from": charge.payer, "to": charge.currency, "data": data}])
        except ExecutionReverted:
            return "insufficient_funds"
        return None

    async def settle(self, charge: TempoCharge, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        """Record, broadcast, decide. Raises ChainError only when the node cannot have the transaction."""
        await on_signed(charge.tx_hash, charge.raw)
        if self._before_broadcast is not None:
            await self._before_broadcast(charge.payer)
        receipt: dict[str, Any] | None = None
        try:
            receipt = await self._rpc.send_raw_transaction_sync(charge.raw)
        except RpcError as exc:
            if exc.rpc_code == _METHOD_NOT_FOUND:
                receipt = await self._send_and_wait(charge, timeout)
        except ChainError:
            pass  # maybe broadcast: only the chain can tell
        if receipt is not None and receipt_pays(receipt, charge):
            return decide_tempo(TempoTxFacts(charge.tx_hash, mined=True, pays=True), charge.valid_before)
        if receipt is None:
            with contextlib.suppress(ChainError):
                await self._rpc.wait_for_receipt(charge.tx_hash, timeout=timeout)
        return await self._decide(charge)

    async def _send_and_wait(self, charge: TempoCharge, timeout: float) -> dict[str, Any] | None:
        with contextlib.suppress(ChainError):
            await self._rpc.send_raw_transaction(charge.raw)
        with contextlib.suppress(ChainError):
            return await self._rpc.wait_for_receipt(charge.tx_hash, timeout=timeout)
        return None

    async def facts(self, charge: TempoCharge) -> TempoTxFacts:
        """Receipt (or pending transaction) and the latest block's time, in one batch."""
        receipt, pending, head = await self._rpc.batch(
            [
                ("eth_getTransactionReceipt", [charge.tx_hash]),
                ("eth_getTransactionByHash", [charge.tx_hash]),
                ("eth_getBlockByNumber", ["latest", False]),
            ]
        )
        chain_time = int(str(head["timestamp"]), 16) if head else None
        if receipt:
            return TempoTxFacts(
                charge.tx_hash, mined=True, pays=receipt_pays(receipt, charge), chain_time=chain_time
            )
        return TempoTxFacts(charge.tx_hash, mined=False, pending=bool(pending), chain_time=chain_time)

    async def _decide(self, charge: TempoCharge) -> SettleOutcome:
        try:
            return decide_tempo(await self.facts(charge), charge.valid_before)
        except ChainError:
            return SettleOutcome(SettleStatus.UNKNOWN, charge.tx_hash)

    async def lookup(self, charge: TempoCharge) -> SettleOutcome:
        """The reconciler's question. A transaction the node lost is re-sent (the same bytes land at most
        once, and never after validBefore)."""
        facts = await self.facts(charge)
        if not facts.mined and not facts.pending and (facts.chain_time or 0) < charge.valid_before:
            with contextlib.suppress(ChainError):
                if self._before_broadcast is not None:
                    await self._before_broadcast(charge.payer)
                await self._rpc.send_raw_transaction(charge.raw)
            facts = await self.facts(charge)
        return decide_tempo(facts, charge.valid_before)
