"""Finding 8: a refund whose outcome is unknown is re-sent as the same signed bytes; an RPC error (rate limit,
fee too low, a lagging node's "nonce too low") never makes us sign a second refund. Only chain facts (its
nonce used by another transaction, no receipt) say the first can never land."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from studio402.chain.devnet import Devnet
from studio402.chain.refunds import EvmRefunder
from studio402.chain.rpc import AsyncRpc
from studio402.chain.txsign import tx_nonce
from studio402.chain.wallet import SettlerWallet
from studio402.payments.outcome import SettleOutcome, SettleStatus
from tests.chainfaults import FaultyRpc
from tests.devnet_fixture import new_payer

AMOUNT = 12_345


@dataclass
class Sent:
    tx_hash: str
    raw: bytes
    outcome: SettleOutcome


@dataclass
class Rig:
    proxy: FaultyRpc
    refunder: EvmRefunder
    key: str
    to: str


@pytest.fixture
async def rig(devnet: Devnet) -> AsyncIterator[Rig]:
    """A refund wallet of its own (ETH for gas, test USDC to give back) behind a faulty RPC."""
    account = Account.create()
    key = "0x" + bytes(account.key).hex()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10**18)])
    await devnet.fund(account.address, 1_000_000)
    payer = await new_payer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        rpc = AsyncRpc(proxy.url)
        try:
            refunder = EvmRefunder(rpc, SettlerWallet(rpc, key), token=devnet.info.token)
            yield Rig(proxy, refunder, key, payer.address)
        finally:
            await rpc.aclose()


async def lost_refund(rig: Rig) -> Sent:
    """A refund signed and announced, which the node never got (outcome unknown)."""
    seen: list[tuple[str, bytes]] = []

    async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
        assert tx_hash is not None and raw is not None
        seen.append((tx_hash, raw))

    rig.proxy.drop_next_sends(1_000)
    outcome = await rig.refunder.send(rig.to, AMOUNT, on_signed=on_signed, timeout=0.5)
    rig.proxy.drop_next_sends(0)
    assert outcome.status is SettleStatus.UNKNOWN
    tx_hash, raw = seen[-1]
    return Sent(tx_hash, raw, outcome)


@pytest.mark.parametrize(
    "error",
    [
        {"code": -32005, "message": "rate limited"},
        {"code": -32000, "message": "transaction underpriced"},
        {"code": -32000, "message": "nonce too low"},  # a node behind the others
        {"code": -32603, "message": "internal error"},
    ],
)
async def test_an_rpc_error_on_resend_is_not_proof_the_refund_can_never_land(
    devnet: Devnet, rig: Rig, error: dict[str, Any]
) -> None:
    sent = await lost_refund(rig)
    rig.proxy.fail_method("eth_sendRawTransaction", error)
    again = await rig.refunder.lookup(rig.to, AMOUNT, sent.tx_hash, sent.raw)
    assert again.status is SettleStatus.UNKNOWN, again  # not "dropped": no second refund is signed
    # The node answers again: the same bytes land, once.
    for _ in range(20):
        again = await rig.refunder.lookup(rig.to, AMOUNT, sent.tx_hash, sent.raw)
        if again.status is not SettleStatus.UNKNOWN:
            break
        await devnet.rpc.request("evm_mine", [])
    assert (again.status, again.tx_hash) == (SettleStatus.SETTLED, sent.tx_hash)
    assert await devnet.balance_of(rig.to) == AMOUNT


async def test_a_refund_whose_nonce_another_transaction_used_can_be_sent_anew(
    devnet: Devnet, rig: Rig
) -> None:
    sent = await lost_refund(rig)
    other = SettlerWallet(devnet.rpc, rig.key)  # the node's view: that nonce is still free
    receipt = await other.send_and_wait(Account.create().address, b"", timeout=10)
    tx = await devnet.rpc.get_transaction(receipt["transactionHash"])
    assert tx is not None and int(tx["nonce"], 16) == tx_nonce(sent.raw)  # it took the refund's nonce
    verdict = await rig.refunder.lookup(rig.to, AMOUNT, sent.tx_hash, sent.raw)
    assert (verdict.status, verdict.reason) == (SettleStatus.REVERTED, "refund_replaced")
    assert await devnet.balance_of(rig.to) == 0
