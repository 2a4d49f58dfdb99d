"""What the chain says, for the ledger audit (the `AuditChain` port)."""

from __future__ import annotations

from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import (
    AUTHORIZATION_USED_TOPIC,
    decode_bool,
    encode_authorization_state,
    transfers_in_receipt,
)


class RpcAuditChain:
    def __init__(self, rpc: AsyncRpc, token: str) -> None:
        self._rpc = rpc
        self._token = token

    async def transfers(self, tx_hash: str) -> list[tuple[str, str, int]]:
        receipt = await self._rpc.get_transaction_receipt(tx_hash)
        if receipt is None or not receipt_succeeded(receipt):
            return []
        return [
            (e.sender.lower(), e.receiver.lower(), e.value)
            for e in transfers_in_receipt(receipt, self._token)
        ]

    async def authorization_tx(self, payer: str, nonce: str) -> str | None:
        """The transaction that used this authorization (its AuthorizationUsed(payer, nonce) log)."""
        logs = await self._rpc.get_logs(
            {
                "address": self._token,
                "fromBlock": "0x0",
                "toBlock": "latest",
                "topics": [
                    AUTHORIZATION_USED_TOPIC,
                    "0x" + payer.lower().removeprefix("0x").rjust(64, "0"),
                    "0x" + nonce.lower().removeprefix("0x"),
                ],
            }
        )
        return str(logs[-1]["transactionHash"]) if logs else None

    async def authorization_used(self, payer: str, nonce: str) -> bool:
        data = encode_authorization_state(payer, bytes.fromhex(nonce.removeprefix("0x")))
        return decode_bool(await self._rpc.call(self._token, data))
