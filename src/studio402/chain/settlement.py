"""Settling `exact` EVM payments with our own settler wallet over RPC (the `EvmSettlement` port).

Per payment: one eth_call to simulate, one signed transaction (hash recorded by the caller before it is
broadcast), one receipt wait shared with every other settlement in flight."""

from __future__ import annotations

import contextlib

from studio402.chain.audit import RpcAuditChain
from studio402.chain.errors import ExecutionReverted, OutcomeUnknown
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import (
    encode_transfer_with_authorization,
    revert_reason_to_x402,
    transfers_in_receipt,
)
from studio402.chain.wallet import SettlerWallet, SignedTx
from studio402.errors import ChainError
from studio402.payments.methods.evm_exact import (
    OnSigned,
    Reason,
    SettleOutcome,
    SettleStatus,
    VerifiedPayment,
)

SETTLE_GAS = 150_000  # transferWithAuthorization costs ~90k on FiatToken and on our token


class EvmSettler:
    def __init__(self, rpc: AsyncRpc, wallet: SettlerWallet, *, token: str) -> None:
        self._rpc = rpc
        self._wallet = wallet
        self._token = token
        self._chain = RpcAuditChain(rpc, token)

    async def simulate(self, payment: VerifiedPayment) -> str | None:
        data = encode_transfer_with_authorization(payment.auth, payment.signature)
        try:
            await self._rpc.call(self._token, data, from_=self._wallet.address)
        except ExecutionReverted as exc:
            return revert_reason_to_x402(exc.reason)
        return None

    async def settle(self, payment: VerifiedPayment, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        data = encode_transfer_with_authorization(payment.auth, payment.signature)

        async def record(signed: SignedTx) -> None:
            await on_signed(signed.tx_hash, signed.raw)

        try:
            tx_hash, receipt = await self._wallet.send_for_receipt(
                self._token, data, gas=SETTLE_GAS, timeout=timeout, on_signed=record
            )
        except OutcomeUnknown as exc:
            return SettleOutcome(SettleStatus.UNKNOWN, exc.tx_hash)
        return self._judge(payment, tx_hash, receipt)

    def _judge(self, payment: VerifiedPayment, tx_hash: str, receipt: dict[str, object]) -> SettleOutcome:
        if not receipt_succeeded(receipt):
            return SettleOutcome(SettleStatus.REVERTED, tx_hash, Reason.TRANSACTION_FAILED.value)
        paid = any(
            e.sender.lower() == payment.payer
            and e.receiver.lower() == payment.requirement.pay_to.lower()
            and e.value == payment.requirement.amount
            for e in transfers_in_receipt(receipt, self._token)
        )
        if not paid:  # a success without our Transfer is not a payment
            return SettleOutcome(SettleStatus.REVERTED, tx_hash, "invalid_exact_evm_transfer_event_mismatch")
        return SettleOutcome(SettleStatus.SETTLED, tx_hash)

    async def lookup(
        self, payment: VerifiedPayment, tx_hash: str | None, raw_tx: bytes | None, now: float
    ) -> SettleOutcome:
        """The reconciler's question. Settled once the authorization is used on chain (by our transaction or
        anyone's); failed only once it can never be used any more (expired unused); unknown in between,
        re-sending our signed transaction if the node lost it."""
        if tx_hash is not None:
            receipt = await self._rpc.get_transaction_receipt(tx_hash)
            if receipt is not None and self._judge(payment, tx_hash, receipt).status is SettleStatus.SETTLED:
                return SettleOutcome(SettleStatus.SETTLED, tx_hash)
        if await self._used(payment):
            return SettleOutcome(
                SettleStatus.SETTLED,
                await self._chain.authorization_tx(payment.payer, payment.nonce) or tx_hash,
            )
        if payment.auth.valid_before <= now:
            return SettleOutcome(SettleStatus.REVERTED, tx_hash, Reason.VALID_BEFORE.value)
        pending = tx_hash is not None and await self._rpc.get_transaction(tx_hash) is not None
        if not pending and raw_tx is not None and await self.simulate(payment) is None:
            with contextlib.suppress(ChainError):  # refused or unreachable: ask again next round
                await self._rpc.send_raw_transaction(raw_tx)
        return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)

    async def _used(self, payment: VerifiedPayment) -> bool:
        return await self._chain.authorization_used(payment.payer, payment.nonce)
