"""What the chain says, for the ledger audit (the `AuditChain` port)."""

from __future__ import annotations

from studio402.chain.facts import ChainFactReader, Transfer
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import transfers_in_receipt


class RpcAuditChain:
    def __init__(self, rpc: AsyncRpc, token: str) -> None:
        self._rpc = rpc
        self._token = token
        self._facts = ChainFactReader(rpc, token)

    async def transfers(self, tx_hash: str) -> list[tuple[str, str, int]]:
        receipt = await self._rpc.get_transaction_receipt(tx_hash)
        if receipt is None or not receipt_succeeded(receipt):
            return []
        return [
            (e.sender.lower(), e.receiver.lower(), e.value)
            for e in transfers_in_receipt(receipt, self._token)
        ]

    async def paid_with_authorization(self, payer: str, nonce: str, pay_to: str, amount: int) -> str | None:
        return await self._facts.paid_by(Transfer(payer, pay_to, amount, nonce))
