"""Reads the chain facts a settlement outcome is decided from (payments.outcome): our receipts, the token's
AuthorizationUsed / AuthorizationCanceled logs for (payer, nonce), the transfer each use made, and the
chain's clock. Reads only; two or three batched JSON-RPC round trips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio402.chain.rpc import AsyncRpc, RpcError, receipt_succeeded
from studio402.chain.token import (
    AUTHORIZATION_CANCELED_TOPIC,
    AUTHORIZATION_USED_TOPIC,
    decode_transfer_log,
)
from studio402.payments.outcome import AuthorizationUse, ChainFacts, OwnTx

# How far back AuthorizationUsed / Canceled logs are searched. An authorization lives at most
# maxTimeoutSeconds (+ slack) and was signed just before we saw it; 5,000 blocks is > 20 min on the fastest
# L2s (0.25 s blocks) and within the log-range limits of common RPC providers.
LOG_LOOKBACK_BLOCKS = 5_000


@dataclass(frozen=True, slots=True)
class Transfer:
    """The quoted transfer: what a settlement of this authorization moves."""

    payer: str
    pay_to: str
    amount: int
    nonce: str  # 0x-prefixed bytes32


def _topic(address: str) -> str:
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")


def _is_quoted(log: Mapping[str, Any], token: str, quoted: Transfer) -> bool:
    event = decode_transfer_log(log)
    return (
        event is not None
        and event.token.lower() == token.lower()
        and event.sender.lower() == quoted.payer.lower()
        and event.receiver.lower() == quoted.pay_to.lower()
        and event.value == quoted.amount
    )


def receipt_pays(receipt: Mapping[str, Any], token: str, quoted: Transfer) -> bool:
    """A successful receipt with the quoted token transfer in it."""
    logs = receipt.get("logs") or []
    return receipt_succeeded(dict(receipt)) and any(_is_quoted(log, token, quoted) for log in logs)


def _use_pays(receipt: Mapping[str, Any], token: str, used_log: Mapping[str, Any], quoted: Transfer) -> bool:
    """Did the transaction that used the authorization make the quoted transfer? FiatToken (and our token)
    log AuthorizationUsed and then the Transfer it authorized, so the Transfer is the next log."""
    if not receipt_succeeded(dict(receipt)):
        return False
    following = _log_index(used_log) + 1
    logs = receipt.get("logs") or []
    return any(_log_index(log) == following and _is_quoted(log, token, quoted) for log in logs)


def _log_index(log: Mapping[str, Any]) -> int:
    return int(str(log.get("logIndex", "0x0")), 16)


class ChainFactReader:
    """Chain facts about one token's EIP-3009 authorizations, through one RPC."""

    def __init__(self, rpc: AsyncRpc, token: str, *, lookback_blocks: int = LOG_LOOKBACK_BLOCKS) -> None:
        self._rpc = rpc
        self._token = token
        self._lookback = lookback_blocks

    async def own(self, tx_hashes: Sequence[str], quoted: Transfer) -> tuple[OwnTx, ...]:
        """Our transactions: mined (and paying?) or pending in the node's pool."""
        if not tx_hashes:
            return ()
        calls: list[tuple[str, Sequence[Any]]] = []
        for tx_hash in tx_hashes:
            calls += [("eth_getTransactionReceipt", [tx_hash]), ("eth_getTransactionByHash", [tx_hash])]
        results = await self._rpc.batch(calls)
        out = []
        for i, tx_hash in enumerate(tx_hashes):
            receipt, known = results[2 * i], results[2 * i + 1]
            if isinstance(receipt, dict):
                out.append(OwnTx(tx_hash, mined=True, pays=receipt_pays(receipt, self._token, quoted)))
            else:
                out.append(OwnTx(tx_hash, mined=False, pending=isinstance(known, dict)))
        return tuple(out)

    async def facts(self, tx_hashes: Sequence[str], quoted: Transfer) -> ChainFacts:
        """All the facts: our transactions, every use or cancellation of the authorization, the clock."""
        ours = await self.own(tx_hashes, quoted)
        if any(tx.pays for tx in ours):  # our receipt proves it: no log search needed
            return ChainFacts(ours=ours)
        head = await self._rpc.get_block("latest")
        if head is None:
            raise RpcError("eth_getBlockByNumber: no latest block", rpc_code=None, rpc_message="no block")
        number = int(str(head["number"]), 16)
        logs = await self._logs(
            {
                "address": self._token,
                "fromBlock": hex(max(0, number - self._lookback)),
                "toBlock": hex(number),
                "topics": [
                    [AUTHORIZATION_USED_TOPIC, AUTHORIZATION_CANCELED_TOPIC],
                    _topic(quoted.payer),
                    "0x" + quoted.nonce.lower().removeprefix("0x"),
                ],
            }
        )
        used = [log for log in logs if str(log["topics"][0]).lower() == AUTHORIZATION_USED_TOPIC]
        canceled = any(str(log["topics"][0]).lower() == AUTHORIZATION_CANCELED_TOPIC for log in logs)
        return ChainFacts(
            ours=ours,
            uses=await self._uses(used, quoted),
            canceled=canceled,
            chain_time=int(str(head["timestamp"]), 16),
            logs_checked=True,
        )

    async def _logs(self, filter_: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._rpc.get_logs(filter_)

    async def _uses(
        self, used: Sequence[Mapping[str, Any]], quoted: Transfer
    ) -> tuple[AuthorizationUse, ...]:
        if not used:
            return ()
        hashes = [str(log["transactionHash"]) for log in used]
        receipts = await self._rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        return tuple(
            AuthorizationUse(h, pays=isinstance(r, dict) and _use_pays(r, self._token, log, quoted))
            for h, r, log in zip(hashes, receipts, used, strict=True)
        )

    async def paid_by(self, quoted: Transfer) -> str | None:
        """The transaction that made the quoted transfer with this authorization (anyone's), if any."""
        facts = await self.facts((), quoted)
        return next((u.tx_hash for u in facts.uses if u.pays), None)
