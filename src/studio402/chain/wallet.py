"""A hot wallet that signs and broadcasts transactions with a local nonce manager.

Built for many settlements in flight at once: an asyncio lock covers only nonce allocation + signing;
broadcasting and waiting for receipts run concurrently. The node is asked for the nonce once, then again
only when it says the local view is wrong ("nonce too low") or a transaction of ours vanished.

Error contract (what the payment engine relies on): a call raises `RpcError` / `ChainError` only when the
node refused the transaction before its pool (bad signature, gas, funds for gas, fee too low, a nonce that
another transaction of ours used); everything else (a lost answer, geth's "added to the pool but not
processed in 2s", reth's "not confirmed within", a rate limit, an unknown text) means the transaction may be
on its way: the wallet keeps waiting for its receipt (re-sending the same bytes, which can land at most once)
and raises `OutcomeUnknown` (with `tx_hash`) if none came in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, overload

from eth_utils.address import to_checksum_address

from studio402 import failpoints
from studio402.chain.errors import BroadcastUncertain, ReceiptTimeout, RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc
from studio402.chain.txsign import TxSigner, UnsignedTx
from studio402.errors import ChainError

DEFAULT_GAS_LIMIT = 200_000  # transferWithAuthorization uses ~90k, a first mint ~70k
_MAX_ATTEMPTS = 4
_RESEND_EVERY = 2.0  # while a receipt is awaited, make sure the node still has the transaction


class _Verdict(Enum):
    """What a node's answer to a broadcast proves."""

    KNOWN = "known"  # the node already has this exact transaction: wait for it
    NONCE_USED = "nonce_used"  # "nonce too low": refused only if another transaction took the nonce
    NONCE_TAKEN = "nonce_taken"  # another pending transaction holds the nonce; ours was refused
    FEE = "fee"  # fee below what the node accepts: refused, refresh fees and sign again
    INVALID = "invalid"  # refused before the pool for good
    UNCERTAIN = "uncertain"  # anything else: it may be in the pool


# Texts of geth, reth, erigon, nethermind, besu and anvil for refusals that happen before the pool. Only
# these count as "not sent"; an unknown text is never read as a refusal.
_MARKERS: tuple[tuple[_Verdict, tuple[str, ...]], ...] = (
    (_Verdict.KNOWN, ("already known", "known transaction", "already imported", "alreadyknown")),
    (_Verdict.NONCE_TAKEN, ("replacement transaction underpriced", "replacementnotallowed")),
    (_Verdict.NONCE_USED, ("nonce too low", "oldnonce", "nonce has already been used")),
    (
        _Verdict.FEE,
        ("underpriced", "less than block base fee", "fee cap less than", "feetoolow", "gas price too low"),
    ),
    (
        _Verdict.INVALID,
        (
            "insufficient funds",
            "intrinsic gas too low",
            "exceeds block gas limit",
            "gas limit reached",
            "gas too high",
            "invalid sender",
            "invalid chain id",
            "exceeds the configured cap",
            "only replay-protected",
            "transaction type not supported",
            "oversized data",
            "higher than max fee per gas",
            "nonce too high",
            "nonce has max value",
        ),
    ),
)


class _NoSyncMethod(Exception):
    """The node has no eth_sendRawTransactionSync (a missing method processes nothing)."""


def _is_missing_method(error: RpcError) -> bool:
    text = error.rpc_message.lower()
    return error.rpc_code == -32601 or "method not found" in text or "does not exist" in text


def _classify(error: RpcError) -> _Verdict:
    text = error.rpc_message.lower()
    for verdict, markers in _MARKERS:
        if any(m in text for m in markers):
            return verdict
    return _Verdict.UNCERTAIN


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
        """Sign and broadcast (to=None deploys a contract); the tx hash once the node has it. Raises
        BroadcastUncertain (an OutcomeUnknown) when it may or may not have it."""
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
        broadcast, so a caller can record the hash durably first. A refusal that proves nothing was sent
        (stale nonce, low fee) re-signs: the callback then sees the new transaction."""
        signed, sent = await self._broadcast(to, data, gas, value, on_signed, sync=False)
        if not sent:
            raise BroadcastUncertain(
                f"broadcast of {signed.tx_hash} may have happened", tx_hash=signed.tx_hash
            )
        return signed.tx_hash

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
        polling), else send + poll. Raises ReceiptTimeout (an OutcomeUnknown) when the transaction may be on
        its way but no receipt came in time; any other error means it was refused before the pool."""
        deadline = time.monotonic() + timeout
        signed, receipt = await self._broadcast(to, data, gas, 0, on_signed, sync=True)
        if isinstance(receipt, dict):
            return signed.tx_hash, receipt
        return signed.tx_hash, await self._await_receipt(signed, deadline)

    async def send_and_wait(
        self, to: str | None, data: bytes, *, timeout: float, gas: int | None = None, value: int = 0
    ) -> dict[str, Any]:
        """Broadcast and wait for the receipt (check its status: 0x0 = reverted). ReceiptTimeout (an
        OutcomeUnknown) when none arrived in time.

        For sends nobody records (the devnet's deployments and faucet mints): a transaction the chain shows
        can never land (its nonce went to another transaction, no receipt; e.g. a lost send whose nonce was
        handed out again after an ambiguous RPC error) is signed anew. Settlements use `send_for_receipt`,
        whose every transaction the ledger records first."""
        deadline = time.monotonic() + timeout
        while True:
            signed, _ = await self._broadcast(to, data, gas, value, None, sync=False)
            receipt = await self._await_receipt(signed, deadline, until_stranded=True)
            if receipt is not None:
                return receipt

    async def resync(self) -> None:
        """Take the next nonce from the node's pending count (never below what we already handed out)."""
        async with self._lock:
            pending = await self._rpc.get_transaction_count(self.address, "pending")
            self._next_nonce = max(pending, self._next_nonce or 0)

    # -- broadcasting ---------------------------------------------------------------------------------------

    async def _broadcast(
        self,
        to: str | None,
        data: bytes,
        gas: int | None,
        value: int,
        on_signed: Callable[[SignedTx], Awaitable[None]] | None,
        *,
        sync: bool,
    ) -> tuple[SignedTx, dict[str, Any] | bool]:
        """Sign and send until the node has the transaction or refused it for good. Returns the transaction
        and its receipt (sync send), True (the node has it) or False (it may or may not)."""
        gas_limit = gas or self._gas_default or await self._estimate(to, data, value)
        for _ in range(_MAX_ATTEMPTS):
            signed = await self._sign_announced(to, data, gas_limit, value, on_signed)
            try:
                return signed, await self._send_once(signed, sync and self._sync_receipts is not False)
            except RpcUnavailable as exc:
                if exc.request_sent:
                    await self._forget_nonces()  # was the nonce used? only the node can tell now
                    return signed, False
                await self._release(signed.nonce)
                raise
            except _NoSyncMethod:
                self._sync_receipts = False
                await self._release(signed.nonce)
                continue
            except RpcError as exc:
                verdict = _classify(exc)
                resolved = await self._after_refusal(signed, verdict, exc)
                if resolved is not None:
                    return signed, resolved
        raise ChainError(f"gave up after {_MAX_ATTEMPTS} nonce/fee conflicts", code="nonce_conflict")

    async def _send_once(self, signed: SignedTx, sync: bool) -> dict[str, Any] | bool:
        if not sync:
            await self._rpc.send_raw_transaction(signed.raw)
            failpoints.hit("after_broadcast")
            return True
        try:
            receipt = await self._rpc.send_raw_transaction_sync(signed.raw)
        except RpcError as exc:
            if _is_missing_method(exc):
                raise _NoSyncMethod from exc
            raise
        failpoints.hit("after_broadcast")
        self._sync_receipts = True
        return receipt

    async def _after_refusal(
        self, signed: SignedTx, verdict: _Verdict, exc: RpcError
    ) -> dict[str, Any] | bool | None:
        """React to a refusal: None to sign again, else what `_broadcast` returns. Raises when refused for
        good. Only chain facts turn "nonce too low" into a refusal: our transaction may be the one mined."""
        if verdict is _Verdict.KNOWN:
            return True
        if verdict is _Verdict.UNCERTAIN:
            await self._forget_nonces()
            return False
        if verdict is _Verdict.NONCE_USED:
            # The count first: once the nonce is used, a missing receipt means another transaction used it.
            mined_count = await self._rpc.get_transaction_count(self.address, "latest")
            receipt = await self._rpc.get_transaction_receipt(signed.tx_hash)
            if receipt is not None:
                return receipt  # ours was mined (an earlier send of the same bytes went through)
            if mined_count <= signed.nonce:
                await self._forget_nonces()
                return False  # a lagging node or a pending twin: we cannot tell
            await self.resync()  # another transaction took the nonce: ours can never land
            return None
        if verdict is _Verdict.NONCE_TAKEN:
            await self.resync()
            return None
        await self._release(signed.nonce)
        if verdict is _Verdict.FEE:
            self._fees = None
            return None
        raise exc

    @overload
    async def _await_receipt(self, signed: SignedTx, deadline: float) -> dict[str, Any]: ...

    @overload
    async def _await_receipt(
        self, signed: SignedTx, deadline: float, *, until_stranded: bool
    ) -> dict[str, Any] | None: ...

    async def _await_receipt(
        self, signed: SignedTx, deadline: float, *, until_stranded: bool = False
    ) -> dict[str, Any] | None:
        """Poll for the receipt until `deadline`, re-sending the same bytes now and then in case the node lost
        them (a second copy cannot land twice). ReceiptTimeout when none came; with `until_stranded`, None
        as soon as the chain shows it can never land."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._forget_if_dropped(signed.tx_hash)
                raise ReceiptTimeout(f"no receipt for {signed.tx_hash} in time", tx_hash=signed.tx_hash)
            try:
                return await self._rpc.wait_for_receipt(signed.tx_hash, timeout=min(remaining, _RESEND_EVERY))
            except ReceiptTimeout:
                pass
            if until_stranded:
                try:
                    stranded, receipt = await self.landing(signed.tx_hash, signed.nonce)
                except ChainError:
                    stranded, receipt = False, None  # cannot tell now
                if receipt is not None or stranded:
                    return receipt
            if deadline - time.monotonic() > 0:
                await self._resend(signed)

    async def landing(self, tx_hash: str, nonce: int) -> tuple[bool, dict[str, Any] | None]:
        """(can never land, its receipt) for our transaction `tx_hash` signed with `nonce`, in one batch. It
        can never land when its nonce is used and it has no receipt: the count is read first, so a
        transaction mined in between is still seen (ours, once mined, stays visible)."""
        mined, receipt = await self._rpc.batch(
            [
                ("eth_getTransactionCount", [self.address, "latest"]),
                ("eth_getTransactionReceipt", [tx_hash]),
            ]
        )
        if isinstance(receipt, dict):
            return False, receipt
        return int(str(mined), 16) > nonce, None

    async def _resend(self, signed: SignedTx) -> None:
        try:
            await self._rpc.send_raw_transaction(signed.raw)
        except ChainError:
            pass  # known, mined, or the node is unreachable: the receipt poll decides

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
