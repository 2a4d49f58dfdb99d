"""Refunds on the Solana rail, and the rail assembled for the engine from a data dir's devnet."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from studio402.chain.rpc import AsyncRpc
from studio402.payments.outcome import SettleStatus
from studio402.solana import process
from studio402.solana.devnet import DECIMALS, associated_token_account
from studio402.solana.faucet import fund_solana
from studio402.solana.rail import devnet_rail
from studio402.solana.refunds import SvmRefundSender
from studio402.solana.rpc_server import SolanaRpcServer
from tests.solana.conftest import official_payment

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")


async def _no_hook(tx_hash: str | None, raw: bytes | None) -> None:
    return None


def _sender(server: SolanaRpcServer, rpc: AsyncRpc) -> SvmRefundSender:
    dev = server.devnet
    return SvmRefundSender(rpc, dev.fee_payer, dev.pay_to, dev.mint.pubkey(), DECIMALS)


async def test_a_refund_moves_tokens_back_once(sol_server: SolanaRpcServer, sol_rpc: AsyncRpc) -> None:
    dev = sol_server.devnet
    payer = Keypair().pubkey()
    dev.fund(str(payer), 100)
    dev.fund(str(dev.pay_to.pubkey()), 40_000)
    signed: list[tuple[str | None, bytes | None]] = []

    async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
        signed.append((tx_hash, raw))

    sender = _sender(sol_server, sol_rpc)
    outcome = await sender.send(str(payer), 40_000, on_signed=on_signed, timeout=5)
    assert outcome.status is SettleStatus.SETTLED and outcome.tx_hash == signed[0][0]
    ata = associated_token_account(payer, dev.mint.pubkey())
    assert dev.token_balance(ata) == 40_100
    again = await sender.lookup(str(payer), 40_000, signed[0][0], signed[0][1])  # re-sent bytes land once
    assert again.status is SettleStatus.SETTLED and dev.token_balance(ata) == 40_100
    never = await sender.lookup(str(payer), 40_000, None, None)
    assert never.status is SettleStatus.REVERTED


async def test_a_refund_that_can_no_longer_land_is_not_charged(
    sol_server: SolanaRpcServer, sol_rpc: AsyncRpc
) -> None:
    dev = sol_server.devnet
    payer = Keypair().pubkey()
    dev.fund(str(payer), 100)
    dev.fund(str(dev.pay_to.pubkey()), 40_000)
    kept: list[bytes | None] = []

    async def lose_it(tx_hash: str | None, raw: bytes | None) -> None:
        kept.append(raw)
        dev.expire_blockhash()  # the node never sees it before its blockhash expires

    sender = _sender(sol_server, sol_rpc)
    outcome = await sender.send(str(payer), 40_000, on_signed=lose_it, timeout=5)
    assert outcome.status is SettleStatus.REVERTED  # so the refund service may sign a new one
    assert (await sender.lookup(str(payer), 40_000, outcome.tx_hash, kept[0])).status is SettleStatus.REVERTED
    assert dev.token_balance(associated_token_account(payer, dev.mint.pubkey())) == 100


async def test_the_devnet_rail_pays_and_refunds(tmp_path: Path) -> None:
    rail = await devnet_rail(tmp_path, max_timeout_seconds=60)
    try:
        url, _ = await process.ensure_running(tmp_path)
        payer = Keypair()
        await fund_solana(tmp_path, str(payer.pubkey()), 1_000_000)
        requirement = rail.method.offer.requirement(50_000)
        payment = rail.method.verify(await official_payment(url, payer, requirement), requirement, 1_000.0)
        assert (
            await rail.method.settle(payment, on_signed=_no_hook, timeout=5)
        ).status is SettleStatus.SETTLED
        refund = await rail.refunds.send(payment.payer, requirement.amount, on_signed=_no_hook, timeout=5)
        assert refund.status is SettleStatus.SETTLED
        mint = Pubkey.from_string(rail.method.offer.asset.address)
        ata = str(associated_token_account(payer.pubkey(), mint))
        balance = await rail.rpc.request("getTokenAccountBalance", [ata])
        assert balance["value"]["amount"] == "1000000"
    finally:
        await rail.rpc.aclose()
        await process.stop(tmp_path)
