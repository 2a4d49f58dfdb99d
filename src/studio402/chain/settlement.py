"""Settling `exact` EVM payments with our own settler wallet over RPC (the `EvmSettlement` port).

Per payment: one eth_call to simulate, one signed transaction (hash recorded by the caller before it is
broadcast), one receipt wait shared with every other settlement in flight. Every outcome other than "our
receipt shows the transfer" is decided from chain facts (payments.outcome.decide), never from error texts."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from studio402.chain.errors import ExecutionReverted, OutcomeUnknown
from studio402.chain.facts import ChainFactReader, Transfer, receipt_pays
from studio402.chain.rpc import AsyncRpc
from studio402.chain.token import encode_transfer_with_authorization, revert_reason_to_x402
from studio402.chain.txsign import tx_nonce
from studio402.chain.wallet import SettlerWallet, SignedTx
from studio402.errors import ChainError
from studio402.payments.methods.evm_exact import OnSigned, SettleOutcome, SettleStatus, VerifiedPayment
from studio402.payments.outcome import ChainFacts, OwnTx, decide

SETTLE_GAS = 150_000  # transferWithAuthorization costs ~90k on FiatToken and on our token


def quoted_transfer(payment: VerifiedPayment) -> Transfer:
    return Transfer(payment.payer, payment.requirement.pay_to, payment.requirement.amount, payment.nonce)


class EvmSettler:
    def __init__(self, rpc: AsyncRpc, wallet: SettlerWallet, *, token: str) -> None:
        self._rpc = rpc
        self._wallet = wallet
        self._token = token
        self.facts = ChainFactReader(rpc, token)

    async def simulate(self, payment: VerifiedPayment) -> str | None:
        data = encode_transfer_with_authorization(payment.auth, payment.signature)
        try:
            await self._rpc.call(self._token, data, from_=self._wallet.address)
        except ExecutionReverted as exc:
            return revert_reason_to_x402(exc.reason)  # only a hint for the 402: nothing was broadcast
        return None

    async def settle(self, payment: VerifiedPayment, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        data = encode_transfer_with_authorization(payment.auth, payment.signature)
        quoted = quoted_transfer(payment)

        async def record(signed: SignedTx) -> None:
            await on_signed(signed.tx_hash, signed.raw)

        try:
            tx_hash, receipt = await self._wallet.send_for_receipt(
                self._token, data, gas=SETTLE_GAS, timeout=timeout, on_signed=record
            )
        except OutcomeUnknown as exc:
            return await self._decide(payment, exc.tx_hash)
        if receipt_pays(receipt, self._token, quoted):  # the common case: no further reads
            return decide(
                ChainFacts(ours=(OwnTx(tx_hash, mined=True, pays=True),)), payment.auth.valid_before
            )
        # Reverted or no transfer: a front-run is still a payment, a cancellation is not.
        return await self._decide(payment, tx_hash)

    async def _decide(self, payment: VerifiedPayment, tx_hash: str | None) -> SettleOutcome:
        try:
            facts = await self.facts.facts([tx_hash] if tx_hash else [], quoted_transfer(payment))
        except ChainError:
            return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)
        return decide(facts, payment.auth.valid_before)

    async def lookup(
        self, payment: VerifiedPayment, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome:
        quoted, hashes = quoted_transfer(payment), [tx_hash] if tx_hash else []
        # The count before the receipt: once our nonce is used, a receipt still missing after it means
        # another transaction took the nonce (ours, once mined, stays visible). Only a signed transaction
        # of ours has a nonce to check.
        nonce = tx_nonce(raw_tx) if raw_tx is not None else None
        mined_count = 0
        if nonce is not None:
            mined_count = await self._rpc.get_transaction_count(self._wallet.address, "latest")
        ours = await self.facts.own(hashes, quoted)
        if any(tx.pays for tx in ours):
            return decide(ChainFacts(ours=ours), payment.auth.valid_before)
        stranded = nonce is not None and mined_count > nonce and not any(tx.mined for tx in ours)
        if raw_tx is not None and not stranded and not any(tx.mined or tx.pending for tx in ours):
            with contextlib.suppress(ChainError):  # lost by the node: the same bytes land at most once
                await self._rpc.send_raw_transaction(raw_tx)
        outcome = decide(await self.facts.facts(hashes, quoted), payment.auth.valid_before)
        if stranded and outcome.status is SettleStatus.UNKNOWN:
            return replace(outcome, stranded=True)
        return outcome
