"""Finding 8: a refund whose outcome is unknown is re-sent as the same signed bytes; an RPC error (rate limit,
fee too low, a lagging node's "nonce too low") never makes us sign a second refund. Only chain facts (its
nonce used by another transaction, no receipt) say the first can never land."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from studio402.backends.base import FailureCode
from studio402.chain.devnet import Devnet
from studio402.chain.refunds import EvmRefunder
from studio402.chain.rpc import AsyncRpc
from studio402.chain.txsign import tx_nonce
from studio402.chain.wallet import SettlerWallet
from studio402.config import RefundMethod
from studio402.payments.outcome import SettleOutcome, SettleStatus
from studio402.payments.refunds import RefundRecord, RefundService, RefundState
from tests.chainfaults import FaultyRpc
from tests.devnet_fixture import new_payer
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import paid_job, running_server

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


async def test_two_senders_of_one_pending_refund_send_one_transfer(devnet: Devnet, tmp_path: Path) -> None:
    """Two reconcilers (a request's sender and a reconciler, or two processes) pick the same pending refund
    at once: each state change is a compare-and-set, so exactly one transfer is signed and sent."""
    payer = await new_payer(devnet, 1_000_000)
    registry = only(ScriptedBackend(fail=FailureCode.MODERATED))
    async with running_server(devnet, tmp_path / "d", registry=registry) as server:
        wiring = server.wiring
        started: list[str] = []

        async def hold(job: Any) -> None:  # the job fails; its refund is left for the reconcilers below
            started.append(job.id)

        wiring.hooks.refund = hold  # type: ignore[method-assign]
        job_id = await paid_job(server, payer.key)
        for _ in range(200):
            if started:
                break
            await asyncio.sleep(0.025)
        job = await wiring.jobs.get(job_id)
        assert job is not None and job.payment_id is not None
        refunds = wiring.refunds
        record = RefundRecord(
            id="ref_race",
            job_id=job_id,
            payment_id=job.payment_id,
            payer=job.payer,
            method=RefundMethod.ONCHAIN,
            micros=job.micros,
            state=RefundState.PENDING,
            created_at=time.time(),
            updated_at=time.time(),
            network=devnet.info.network,
            asset=devnet.info.token,
            amount=job.micros,
        )
        store = refunds._store
        assert await store.create(record)
        twin = RefundService(RefundMethod.ONCHAIN, store, refunds._senders, timeout=10)
        await asyncio.gather(refunds.reconcile(), twin.reconcile())
        await refunds.reconcile()
        done = await store.get_for_job(job_id)
        assert done is not None and done.state is RefundState.DONE
    assert await devnet.balance_of(payer.address) == 1_000_000  # paid once, refunded once
