"""Sending refunds: an ERC-20 transfer from the operator's refund wallet back to the payer."""

from __future__ import annotations

from studio402.chain.errors import OutcomeUnknown, RpcError
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import encode_transfer, transfers_in_receipt
from studio402.chain.wallet import SettlerWallet, SignedTx
from studio402.errors import ChainError
from studio402.payments.methods.evm_exact import OnSigned, Reason, SettleOutcome, SettleStatus

TRANSFER_GAS = 100_000


class EvmRefunder:
    def __init__(self, rpc: AsyncRpc, wallet: SettlerWallet, *, token: str) -> None:
        self._rpc = rpc
        self._wallet = wallet
        self._token = token

    async def send(self, to: str, amount: int, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        async def record(signed: SignedTx) -> None:
            await on_signed(signed.tx_hash, signed.raw)

        try:
            tx_hash, receipt = await self._wallet.send_for_receipt(
                self._token, encode_transfer(to, amount), gas=TRANSFER_GAS, timeout=timeout, on_signed=record
            )
        except OutcomeUnknown as exc:
            return SettleOutcome(SettleStatus.UNKNOWN, exc.tx_hash)
        return self._judge(to, amount, tx_hash, receipt)

    def _judge(self, to: str, amount: int, tx_hash: str, receipt: dict[str, object]) -> SettleOutcome:
        sent = receipt_succeeded(receipt) and any(
            e.sender.lower() == self._wallet.address.lower()
            and e.receiver.lower() == to.lower()
            and e.value == amount
            for e in transfers_in_receipt(receipt, self._token)
        )
        if sent:
            return SettleOutcome(SettleStatus.SETTLED, tx_hash)
        return SettleOutcome(SettleStatus.REVERTED, tx_hash, Reason.TRANSACTION_FAILED.value)

    async def lookup(self, to: str, amount: int, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        if tx_hash is None:
            return SettleOutcome(SettleStatus.REVERTED, None, "never_sent")
        receipt = await self._rpc.get_transaction_receipt(tx_hash)
        if receipt is not None:
            return self._judge(to, amount, tx_hash, receipt)
        if await self._rpc.get_transaction(tx_hash) is None and raw_tx is not None:
            try:  # lost by the node: send the same bytes again
                await self._rpc.send_raw_transaction(raw_tx)
            except RpcError as exc:
                if "already known" not in exc.rpc_message.lower():
                    # Refused for good (its nonce went to another transaction): it can never land.
                    return SettleOutcome(SettleStatus.REVERTED, tx_hash, "refund_dropped")
            except ChainError:
                pass  # unreachable now: ask again next round
        return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)
