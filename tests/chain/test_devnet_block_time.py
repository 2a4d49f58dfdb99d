"""A devnet with a block clock (`devnet.block_time_seconds`): transactions wait in the pool for the next
block, the devnet's own deploy / mint paths still work, and a running anvil is never reused in the wrong
mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eth_account import Account

from studio402.chain import anvil
from studio402.chain.devnet import Devnet, devnet_for
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.config import load_settings
from studio402.errors import ConfigError
from tests.devnet_fixture import bystander, new_payer, session_block_time

DEAD_PID = 999_999_999  # above any pid_max: no such process


async def _automines(net: Devnet) -> bool:
    return bool(await net.rpc.request("anvil_getAutomine"))


async def _new_block(rpc: AsyncRpc) -> int:
    """Wait for the next block; its number. The one after it is about a block time away."""
    start = await rpc.block_number()
    for _ in range(500):  # ~10 s
        if (head := await rpc.block_number()) != start:
            return head
        await asyncio.sleep(0.02)
    pytest.fail("no block without a transaction: the chain automines")


async def test_transactions_wait_in_the_pool_and_share_the_next_block(devnet_blocks: Devnet) -> None:
    rpc = devnet_blocks.rpc
    wallet = await bystander(devnet_blocks)
    to = Account.create().address
    for _ in range(3):  # a round straddling a block boundary (a very slow machine) proves nothing: again
        head = await _new_block(rpc)
        sent = [await wallet.send(to, b"", gas=21_000, value=v) for v in (1, 2)]
        pending = [await rpc.get_transaction_receipt(h) for h in sent]
        if await rpc.block_number() == head:
            break
        for h in sent:
            await rpc.wait_for_receipt(h, timeout=10)
    else:
        pytest.fail("no round of two sends fitted between two blocks")
    assert pending == [None, None]  # automine would have mined each at once, in a block of its own
    receipts = [await rpc.wait_for_receipt(h, timeout=10) for h in sent]
    assert all(receipt_succeeded(r) for r in receipts)
    assert [int(r["blockNumber"], 16) for r in receipts] == [head + 1, head + 1]
    assert await rpc.get_balance(to) == 3


async def test_deploy_and_mint_work_on_a_block_clock(devnet_blocks: Devnet) -> None:
    assert not await _automines(devnet_blocks)
    assert await devnet_blocks.balance_of(devnet_blocks.info.demo_payer) == 100_000_000  # minted at start
    payer = await new_payer(devnet_blocks, 2_500_000)
    assert await devnet_blocks.balance_of(payer.address) == 2_500_000


async def test_the_session_devnet_mines_as_the_run_asks(
    devnet: Devnet, request: pytest.FixtureRequest
) -> None:
    asked = session_block_time(request.config)
    assert devnet.block_time == asked
    assert await _automines(devnet) == (asked == 0)


def test_block_time_is_configured_under_devnet(tmp_path: Path) -> None:
    assert devnet_for(load_settings(environ={})).block_time == 0  # automine by default
    settings = load_settings(environ={"STUDIO402_DEVNET__BLOCK_TIME_SECONDS": "1.5"})
    assert settings.devnet.block_time_seconds == 1.5
    assert devnet_for(settings).block_time == 1.5
    with pytest.raises(ConfigError):
        load_settings(environ={"STUDIO402_DEVNET__BLOCK_TIME_SECONDS": "-1"})


async def test_a_devnet_in_use_is_not_switched_to_another_mode(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    await first.start()
    try:
        with pytest.raises(ConfigError) as refused:
            await Devnet(tmp_path, block_time=1).start()
        assert refused.value.code == "devnet_mode_mismatch"
        assert "automine" in refused.value.detail
        assert await _automines(first)  # the running chain was left as its user expects it
        same = Devnet(tmp_path)
        await same.start()
        assert same.reused
        await same.stop()
    finally:
        await first.stop()


async def test_an_orphaned_anvil_in_the_other_mode_restarts_in_the_asked_mode(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    info = await first.start()
    payer = await new_payer(first, 3_000_000)
    record = anvil.read_record(tmp_path / "devnet" / "anvil.pid")
    assert record is not None and record.block_time == 0
    for entry in (tmp_path / "devnet" / "users").iterdir():  # as if its process had died, anvil running on
        entry.rename(entry.with_name(f"{DEAD_PID}-0"))
    second = Devnet(tmp_path, block_time=1)
    try:
        assert (await second.start()).token == info.token
        assert not second.reused and not anvil.pid_alive(record.pid)
        assert not await _automines(second)
        assert await second.balance_of(payer.address) == 3_000_000  # its state came along
        restarted = anvil.read_record(tmp_path / "devnet" / "anvil.pid")
        assert restarted is not None and restarted.block_time == 1
    finally:
        await second.stop()
        await first.stop()
