"""A hot wallet that signs and broadcasts transactions with a local nonce manager.

Built for many settlements in flight at once: an asyncio lock covers only nonce allocation + signing;
broadcasting and waiting for receipts run concurrently. The node is asked for the nonce once, then again
only when it says the local view is wrong ("nonce too low") or a transaction of ours vanished.

Error contract (what the payment engine relies on): `send` raises `OutcomeUnknown` (with `tx_hash`) when a
transaction may have been broadcast; any other error means nothing was broadcast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from eth_utils.address import to_checksum_address

from studio402.chain.errors import BroadcastUncertain, ReceiptTimeout, RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc
from studio402.chain.txsign import TxSigner, UnsignedTx
from studio402.errors import ChainError

DEFAULT_GAS_LIMIT = 200_000  # transferWithAuthorization uses ~90k, a first mint ~70k
_MAX_ATTEMPTS = 4


class _SyncUnsupported(Exception):
    """The node has no eth_sendRawTransactionSync (nothing was broadcast)."""


class _Rejection(Enum):
    NONCE = "nonce"  # our nonce is stale: resync and sign again
    FEE = "fee"  # fee below the base fee: refresh fees and sign again
    KNOWN = "known"  # the node already has this exact transaction
    OTHER = "other"


def _classify(message: str) -> _Rejection:
    text = message.lower()
    if "already known" in text or "known transaction" in text:
        return _Rejection.KNOWN
    if any(m in text for m in ("nonce too low", "replacement transaction underpriced", "nonce has already")):
        return _Rejection.NONCE
    if "base fee" in text or "fee cap" in text or "underpriced" in text:
        return _Rejection.FEE
    return _Rejection.OTHER


@dataclass(frozen=True, slots=True)
class _Fees:
    max_fee: int | None  # EIP-1559 chains
    tip: int | None
    gas_price: int | None  # legacy chains (no baseFeePerGas)
    fetched_at: float


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A transaction signed by the wallet: its hash is known before it is broadcast."""

    nonce: int
    raw: bytes
    tx_hash: str


class SettlerWallet:
    """Signs with `private_key` and pays gas; one instance per key per process."""

    def __init__(
        self,
        rpc: AsyncRpc,
        private_key: str,
        *,
        gas_limit_default: int | None = DEFAULT_GAS_LIMIT,
        fee_ttl: float = 10.0,
    ) -> None:
        self._rpc = rpc
        self._signer = TxSigner(private_key)
        self._address = to_checksum_address(self._signer.address)
        self._gas_default = gas_limit_default  # None: estimate every transaction
        self._fee_ttl = fee_ttl
        self._lock = asyncio.Lock()
        self._next_nonce: int | None = None
        self._fees: _Fees | None = None
        self._sync_receipts: bool | None = None  # does the node have eth_sendRawTransactionSync?

    @property
    def address(self) -> str:
        return self._address

    async def send(self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0) -> str:
        """Sign and broadcast (to=None deploys a contract); the tx hash, right after the node accepted it."""
        return await self.send_prepared(to, data, gas=gas, value=value)

    async def send_prepared(
        self,
        to: str | None,
        data: bytes,
        *,
        gas: int | None = None,
        value: int = 0,
        on_signed: Callable[[SignedTx], Awaitable[None]] | None = None,
    ) -> str:
        """Like `send`, but `on_signed` sees every signed transaction (its hash is known) before it is
        broadcast, so a caller can record the hash durably first. A nonce conflict re-signs: the callback then
        sees the new transaction."""
        gas_limit = gas or self._gas_default or await self._estimate(to, data, value)
        for _ in range(_MAX_ATTEMPTS):
            signed = await self._sign_announced(to, data, gas_limit, value, on_signed)
            try:
                return await self._rpc.send_raw_transaction(signed.raw)
            except RpcUnavailable as exc:
                if not exc.request_sent:
                    await self._release(signed.nonce)
                    raise
                await self._forget_nonces()  # was the nonce used? only the node can tell now
                raise BroadcastUncertain(
                    f"broadcast of {signed.tx_hash} may have happened: {exc.detail}", tx_hash=signed.tx_hash
                ) from exc
            except RpcError as exc:
                kind = _classify(exc.rpc_message)
                if kind is _Rejection.KNOWN:
                    return signed.tx_hash
                if kind is _Rejection.NONCE:
                    await self.resync()
                    continue
                await self._release(signed.nonce)
                if kind is _Rejection.OTHER:
                    raise
                self._fees = None
        raise ChainError(f"gave up after {_MAX_ATTEMPTS} nonce/fee conflicts", code="nonce_conflict")

    async def send_for_receipt(
        self,
        to: str,
        data: bytes,
        *,
        gas: int,
        timeout: float,
        on_signed: Callable[[SignedTx], Awaitable[None]] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Broadcast and wait for the receipt: one `eth_sendRawTransactionSync` where the node has it (no
        polling), else send + poll. Same error contract as `send_prepared`; ReceiptTimeout (an
        OutcomeUnknown) when no receipt came in time."""
        if self._sync_receipts is not False:
            try:
                return await self._send_sync(to, data, gas, on_signed)
            except _SyncUnsupported:
                self._sync_receipts = False
        tx_hash = await self.send_prepared(to, data, gas=gas, on_signed=on_signed)
        return tx_hash, await self._wait_for_receipt(tx_hash, timeout)

    async def _sign_announced(
        self,
        to: str | None,
        data: bytes,
        gas: int,
        value: int,
        on_signed: Callable[[SignedTx], Awaitable[None]] | None,
    ) -> SignedTx:
        """Sign with the next nonce and show the caller; a failing callback gives the nonce back."""
        signed = await self._sign_next(to, data, gas, value)
        if on_signed is not None:
            try:
                await on_signed(signed)
            except BaseException:
                await self._release(signed.nonce)
                raise
        return signed

    async def _send_sync(
        self, to: str, data: bytes, gas: int, on_signed: Callable[[SignedTx], Awaitable[None]] | None
    ) -> tuple[str, dict[str, Any]]:
        for _ in range(_MAX_ATTEMPTS):
            signed = await self._sign_announced(to, data, gas, 0, on_signed)
            try:
                receipt = await self._rpc.send_raw_transaction_sync(signed.raw)
            except RpcUnavailable as exc:
                if not exc.request_sent:
                    await self._release(signed.nonce)
                    raise
                await self._forget_nonces()
                raise ReceiptTimeout(
                    f"no answer for {signed.tx_hash}: {exc.detail}", tx_hash=signed.tx_hash
                ) from exc
            except RpcError as exc:
                if exc.rpc_code == -32601 or "not supported" in exc.rpc_message.lower():
                    await self._release(signed.nonce)
                    raise _SyncUnsupported from exc
                kind = _classify(exc.rpc_message)
                if kind is _Rejection.NONCE:
                    await self.resync()
                    continue
                if kind is _Rejection.KNOWN or "timeout" in exc.rpc_message.lower():
                    raise ReceiptTimeout(
                        f"{signed.tx_hash}: {exc.rpc_message}", tx_hash=signed.tx_hash
                    ) from exc
                await self._release(signed.nonce)
                if kind is _Rejection.OTHER:
                    raise
                self._fees = None
                continue
            self._sync_receipts = True
            return signed.tx_hash, receipt
        raise ChainError(f"gave up after {_MAX_ATTEMPTS} nonce/fee conflicts", code="nonce_conflict")

    async def send_and_wait(
        self, to: str | None, data: bytes, *, timeout: float, gas: int | None = None, value: int = 0
    ) -> dict[str, Any]:
        """Broadcast and wait for the receipt (check its status: 0x0 = reverted).
        ReceiptTimeout (an OutcomeUnknown) when none arrived in time."""
        return await self._wait_for_receipt(await self.send(to, data, gas=gas, value=value), timeout)

    async def resync(self) -> None:
        """Take the next nonce from the node's pending count (never below what we already handed out)."""
        async with self._lock:
            pending = await self._rpc.get_transaction_count(self.address, "pending")
            self._next_nonce = max(pending, self._next_nonce or 0)

    # -- internals ------------------------------------------------------------------------------------------

    async def _estimate(self, to: str | None, data: bytes, value: int) -> int:
        estimate = await self._rpc.estimate_gas(to, data, from_=self.address, value=value)
        return estimate * 6 // 5  # +20 %: state can move between estimate and inclusion

    async def _sign_next(self, to: str | None, data: bytes, gas: int, value: int) -> SignedTx:
        fees = await self._current_fees()
        chain_id = await self._rpc.chain_id()
        target = bytes.fromhex(to.removeprefix("0x")) if to is not None else b""
        async with self._lock:
            if self._next_nonce is None:
                self._next_nonce = await self._rpc.get_transaction_count(self.address, "pending")
            nonce = self._next_nonce
            tx = UnsignedTx(
                chain_id,
                nonce,
                gas,
                target,
                value,
                data,
                max_fee=fees.max_fee,
                tip=fees.tip,
                gas_price=fees.gas_price,
            )
            raw, tx_hash = self._signer.sign(tx)
            self._next_nonce = nonce + 1
        return SignedTx(nonce=nonce, raw=raw, tx_hash=tx_hash)

    async def _release(self, nonce: int) -> None:
        """A signed transaction was refused: hand its nonce out again, or resync if later ones exist."""
        async with self._lock:
            self._next_nonce = nonce if self._next_nonce == nonce + 1 else None

    async def _wait_for_receipt(self, tx_hash: str, timeout: float) -> dict[str, Any]:
        try:
            return await self._rpc.wait_for_receipt(tx_hash, timeout=timeout)
        except ReceiptTimeout:
            await self._forget_if_dropped(tx_hash)
            raise

    async def _forget_if_dropped(self, tx_hash: str) -> None:
        try:
            known = await self._rpc.get_transaction(tx_hash)
        except ChainError:
            return
        if known is None:  # the node dropped it: its nonce is a gap that later transactions wait behind
            await self._forget_nonces()

    async def _forget_nonces(self) -> None:
        async with self._lock:
            self._next_nonce = None

    async def _current_fees(self) -> _Fees:
        fees = self._fees
        if fees is None or time.monotonic() - fees.fetched_at > self._fee_ttl:
            fees = self._fees = await self._fetch_fees()
        return fees

    async def _fetch_fees(self) -> _Fees:
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_gasPrice", []),
        ]
        block, tip_hex, price_hex = await self._rpc.batch(calls, return_exceptions=True)
        if isinstance(price_hex, Exception):
            raise price_hex
        base_fee = block.get("baseFeePerGas") if isinstance(block, dict) else None
        if base_fee is None:
            return _Fees(max_fee=None, tip=None, gas_price=int(price_hex, 16), fetched_at=time.monotonic())
        tip = int(tip_hex, 16) if isinstance(tip_hex, str) else 10**9
        # Twice the base fee: room for six full blocks of base-fee growth; only base fee + tip is paid.
        max_fee = 2 * int(base_fee, 16) + tip
        return _Fees(max_fee=max_fee, tip=tip, gas_price=None, fetched_at=time.monotonic())
