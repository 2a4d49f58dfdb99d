"""Refunds on the Solana rail: an SPL `TransferChecked` from payTo's token account back to the payer's, our
fee payer paying the fee (the `RefundSender` port of payments/refunds.py).

Outcomes come from chain facts like settlements (settlement.decide): an unknown refund is re-sent as the same
bytes, and it is "not charged" (so the service may sign a new one) only once its blockhash has expired with
no status, i.e. when it can never land. A fresh 16-byte memo makes two refunds of one amount distinct."""

from __future__ import annotations

import os

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from studio402.chain.rpc import AsyncRpc
from studio402.errors import InputError
from studio402.payments.interfaces import OnSigned
from studio402.payments.methods.svm_exact import (
    COMPUTE_BUDGET_PROGRAM,
    MEMO_PROGRAM,
    TOKEN_PROGRAM,
    associated_token_account,
)
from studio402.payments.outcome import SettleOutcome, SettleStatus
from studio402.solana.settlement import SignedTx, SvmSettler

_COMPUTE_UNIT_LIMIT = 40_000
_COMPUTE_UNIT_PRICE = 1  # micro-lamports per CU


class SvmRefundSender:
    def __init__(
        self, rpc: AsyncRpc, fee_payer: Keypair, pay_to: Keypair, mint: Pubkey, decimals: int
    ) -> None:
        self._rpc = rpc
        self._settler = SvmSettler(rpc)
        self._fee_payer = fee_payer
        self._owner = pay_to
        self._mint = mint
        self._decimals = decimals

    async def send(self, to: str, amount: int, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        tx = SignedTx.of(await self._sign(to, amount))
        await on_signed(tx.signature, tx.raw)
        return await self._settler.submit(tx, timeout)

    async def lookup(self, to: str, amount: int, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        if tx_hash is None or raw_tx is None:  # nothing was signed for this refund: nothing moved
            return SettleOutcome(SettleStatus.REVERTED, None, "never_sent")
        return await self._settler.outcome(SignedTx.of(VersionedTransaction.from_bytes(raw_tx)))

    async def _sign(self, to: str, amount: int) -> VersionedTransaction:
        try:
            recipient = Pubkey.from_string(to)
        except ValueError:
            raise InputError(f"{to!r} is not a Solana address", code="invalid_address") from None
        latest = await self._rpc.request("getLatestBlockhash", [{"commitment": "confirmed"}])
        blockhash = Hash.from_string(latest["value"]["blockhash"])
        transfer = Instruction(
            TOKEN_PROGRAM,
            bytes([12]) + amount.to_bytes(8, "little") + bytes([self._decimals]),
            [
                AccountMeta(associated_token_account(self._owner.pubkey(), self._mint), False, True),
                AccountMeta(self._mint, False, False),
                AccountMeta(associated_token_account(recipient, self._mint), False, True),
                AccountMeta(self._owner.pubkey(), True, False),
            ],
        )
        instructions = [
            Instruction(COMPUTE_BUDGET_PROGRAM, bytes([2]) + _COMPUTE_UNIT_LIMIT.to_bytes(4, "little"), []),
            Instruction(COMPUTE_BUDGET_PROGRAM, bytes([3]) + _COMPUTE_UNIT_PRICE.to_bytes(8, "little"), []),
            transfer,
            Instruction(MEMO_PROGRAM, os.urandom(16).hex().encode(), []),
        ]
        message = MessageV0.try_compile(self._fee_payer.pubkey(), instructions, [], blockhash)
        return VersionedTransaction(message, [self._fee_payer, self._owner])
