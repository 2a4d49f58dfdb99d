"""What a Solana cluster says, for the ledger audit (the `AuditChain` port of the x402 `exact` SVM rail).

A transaction's token transfers are read from its `meta.preTokenBalances` / `postTokenBalances` (what the
cluster reports for every token account it touched), by owner: the owner whose balance of our mint fell is
the sender, the one whose balance rose the receiver. That is what the ledger records on this rail: the payer
is the payer's wallet (owner of the source account), payTo the wallet that owns the destination account.
Our transactions carry exactly one transfer, so pairing a fall with an equal rise is unambiguous."""

from __future__ import annotations

from typing import Any

from studio402.chain.rpc import AsyncRpc
from studio402.money import account_key


class SvmAuditChain:
    def __init__(self, rpc: AsyncRpc, mint: str) -> None:
        self._rpc = rpc
        self._mint = mint

    async def transfers(self, tx_hash: str) -> list[tuple[str, str, int]]:
        options = {"encoding": "jsonParsed", "commitment": "confirmed", "maxSupportedTransactionVersion": 0}
        tx: Any = await self._rpc.request("getTransaction", [tx_hash, options])
        if tx is None or tx["meta"] is None or tx["meta"]["err"] is not None:
            return []  # never landed, or failed: a failed Solana transaction moves no tokens
        return token_transfers(tx["meta"], self._mint)

    async def paid_with_authorization(self, payer: str, nonce: str, pay_to: str, amount: int) -> str | None:
        """On this rail the authorization is the transaction itself and the ledger's nonce is its signature
        (kept exactly), so a payment paid on chain is that signature's transaction with this transfer."""
        if (payer, pay_to, amount) in await self.transfers(nonce):
            return nonce
        return None


def token_transfers(meta: dict[str, Any], mint: str) -> list[tuple[str, str, int]]:
    """(sender, receiver, amount) of `mint` from a transaction's token balances (owners as the ledger keys
    accounts: base58, exact)."""
    change: dict[str, int] = {}
    for sign, key in ((-1, "preTokenBalances"), (1, "postTokenBalances")):
        for balance in meta.get(key) or []:
            if balance["mint"] == mint:
                owner = account_key(str(balance["owner"]))
                change[owner] = change.get(owner, 0) + sign * int(balance["uiTokenAmount"]["amount"])
    senders = [(owner, -delta) for owner, delta in change.items() if delta < 0]
    receivers = [(owner, delta) for owner, delta in change.items() if delta > 0]
    out: list[tuple[str, str, int]] = []
    for sender, sent in senders:
        match = next((r for r in receivers if r[1] == sent), None)
        if match is not None:  # a fall with no equal rise (several transfers at once) is left unpaired
            receivers.remove(match)
            out.append((sender, match[0], sent))
    return out
