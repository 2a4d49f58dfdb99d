"""The ledger audit's view of the Solana devnet: getTransaction's token balances, read back as transfers."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.keypair import Keypair

from studio402.chain.errors import RpcError
from studio402.chain.rpc import AsyncRpc
from studio402.payments.outcome import SettleStatus
from studio402.solana.audit import SvmAuditChain, token_transfers
from studio402.solana.devnet import DECIMALS, SolanaDevnet
from studio402.solana.refunds import SvmRefundSender
from studio402.solana.rpc_server import SolanaRpcServer


async def _no_hook(tx_hash: str | None, raw: bytes | None) -> None:
    return None


async def test_a_landed_transfer_is_read_back_from_its_token_balances(
    sol_server: SolanaRpcServer, sol_rpc: AsyncRpc, tmp_path: Path
) -> None:
    dev = sol_server.devnet
    payer = Keypair().pubkey()
    dev.fund(str(payer), 100)
    dev.fund(str(dev.pay_to.pubkey()), 40_000)
    sender = SvmRefundSender(sol_rpc, dev.fee_payer, dev.pay_to, dev.mint.pubkey(), DECIMALS)
    outcome = await sender.send(str(payer), 40_000, on_signed=_no_hook, timeout=5)
    assert outcome.status is SettleStatus.SETTLED and outcome.tx_hash is not None
    chain = SvmAuditChain(sol_rpc, str(dev.mint.pubkey()))
    wanted = (str(dev.pay_to.pubkey()), str(payer), 40_000)  # base58 keys exactly as they are
    assert await chain.transfers(outcome.tx_hash) == [wanted]
    assert await SvmAuditChain(sol_rpc, str(Keypair().pubkey())).transfers(outcome.tx_hash) == []
    unknown = str(Keypair().sign_message(b"never sent"))
    assert await chain.transfers(unknown) == []
    with pytest.raises(RpcError):  # a v0 transaction needs maxSupportedTransactionVersion, as on a cluster
        await sol_rpc.request("getTransaction", [outcome.tx_hash, {"encoding": "jsonParsed"}])
    restarted = SolanaDevnet(tmp_path)  # the devnet keeps it across restarts (LiteSVM does not)
    assert restarted.transaction(outcome.tx_hash) is not None


async def test_a_landed_payment_is_found_by_its_signature(
    sol_server: SolanaRpcServer, sol_rpc: AsyncRpc
) -> None:
    """The ledger keys a Solana payment by its transaction's signature: a payment marked failed whose
    transaction did land is found (the audit reports it)."""
    dev = sol_server.devnet
    payer = str(Keypair().pubkey())
    dev.fund(payer, 100)
    dev.fund(str(dev.pay_to.pubkey()), 40_000)
    sender = SvmRefundSender(sol_rpc, dev.fee_payer, dev.pay_to, dev.mint.pubkey(), DECIMALS)
    outcome = await sender.send(payer, 40_000, on_signed=_no_hook, timeout=5)
    assert outcome.tx_hash is not None
    chain = SvmAuditChain(sol_rpc, str(dev.mint.pubkey()))
    source = str(dev.pay_to.pubkey())
    assert await chain.paid_with_authorization(source, outcome.tx_hash, payer, 40_000) == outcome.tx_hash
    assert await chain.paid_with_authorization(source, outcome.tx_hash, payer, 39_999) is None
    unknown = str(Keypair().sign_message(b"never sent"))
    assert await chain.paid_with_authorization(source, unknown, payer, 40_000) is None


def test_only_equal_rise_and_fall_pair_into_a_transfer() -> None:
    def balance(owner: str, amount: int, mint: str = "M") -> dict[str, object]:
        return {"mint": mint, "owner": owner, "uiTokenAmount": {"amount": str(amount)}}

    meta = {
        "preTokenBalances": [balance("A", 10), balance("B", 0), balance("C", 5), balance("X", 9, "N")],
        "postTokenBalances": [balance("A", 3), balance("B", 7), balance("C", 4), balance("X", 0, "N")],
    }
    assert token_transfers(meta, "M") == [("A", "B", 7)]  # C's fall of 1 has no matching rise
