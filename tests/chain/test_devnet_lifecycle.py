"""Devnet lifecycle on real anvil processes: first start, reuse, crash (SIGKILL) and clean restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from eth_account import Account

from studio402.chain import anvil
from studio402.chain.accounts import DEV_KEYS
from studio402.chain.devnet import Devnet, read_info
from studio402.chain.rpc import receipt_succeeded
from studio402.chain.token import decode_bool, encode_authorization_state, encode_transfer_with_authorization
from studio402.chain.wallet import SettlerWallet
from studio402.errors import ConfigError
from tests.devnet_fixture import authorize, new_payer


async def _settle_one(net: Devnet) -> tuple[str, bytes]:
    """A payer-signed transferWithAuthorization of 2.5 USDC settled by the settler; (payer, nonce)."""
    payer = await new_payer(net, 10_000_000)
    auth, signature = authorize(net, payer, 2_500_000)
    settler = SettlerWallet(net.rpc, net.info.settler_key)
    data = encode_transfer_with_authorization(auth, signature)
    assert receipt_succeeded(await settler.send_and_wait(net.info.token, data, timeout=10))
    return payer.address, auth.nonce


async def _snapshot(net: Devnet, payer: str, nonce: bytes) -> tuple[str, int, int, int, bool]:
    used = decode_bool(await net.rpc.call(net.info.token, encode_authorization_state(payer, nonce)))
    return (
        net.info.token,
        await net.balance_of(payer),
        await net.balance_of(net.info.pay_to),
        await net.balance_of(net.info.demo_payer),
        used,
    )


def _anvil_pid(net: Devnet) -> int:
    record = anvil.read_record(net.root / "anvil.pid")
    assert record is not None
    return record.pid


async def _crash(net: Devnet) -> None:
    """SIGKILL the devnet's anvil (no exit dump, no clean stop) and wait until it is gone."""
    pid = _anvil_pid(net)
    os.kill(pid, signal.SIGKILL)
    while anvil.pid_alive(pid):
        await asyncio.sleep(0.01)


def test_find_anvil(tmp_path: Path) -> None:
    found = anvil.find_anvil()
    assert Path(found).name == "anvil" and os.access(found, os.X_OK)
    assert anvil.find_anvil(found) == found
    with pytest.raises(ConfigError, match="not an executable"):
        anvil.find_anvil(str(tmp_path / "nope"))


async def test_first_start_deploys_funds_and_describes_itself(tmp_path: Path) -> None:
    net = Devnet(tmp_path, demo_funds_micros=42_000_000)
    info = await net.start()
    try:
        assert not net.reused
        assert info.network == "eip155:31337" and info.decimals == 6
        assert info.token == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # dev account 0, nonce 0
        assert await net.balance_of(info.demo_payer) == 42_000_000
        accounts = await net.rpc.request("eth_accounts")
        roles = [info.minter_key, info.settler_key, info.refund_key, info.demo_payer_key]
        assert roles == list(DEV_KEYS)
        assert [Account.from_key(k).address.lower() for k in roles] == [a.lower() for a in accounts[:4]]
        assert info.pay_to == Account.from_key(info.refund_key).address
        public = info.as_public_json()
        assert public == {
            "rpcUrl": info.rpc_url,
            "chainId": 31337,
            "network": "eip155:31337",
            "token": info.token,
            "payTo": info.pay_to,
            "demoPayer": info.demo_payer,
        }
        assert not any("key" in k.lower() for k in public)
        saved = json.loads((tmp_path / "devnet" / "devnet.json").read_text())
        assert saved["token"] == info.token and saved["rpc_url"] == info.rpc_url
        assert await read_info(tmp_path) == info
        tx = await net.fund(Account.create().address, 5)
        assert tx.startswith("0x")
    finally:
        await net.stop()
    assert await read_info(tmp_path) is None


async def test_crash_then_restart_keeps_payments(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    await first.start()
    payer, nonce = await _settle_one(first)
    await first.checkpoint()
    before = await _snapshot(first, payer, nonce)
    assert before[1:] == (7_500_000, 2_500_000, 100_000_000, True)
    await _crash(first)

    second = Devnet(tmp_path)
    info = await second.start()
    try:
        assert not second.reused
        assert info.rpc_url == first.info.rpc_url  # same port again: cached URLs keep working
        assert await _snapshot(second, payer, nonce) == before
        # The restarted chain keeps working: a new settlement on top of the restored state.
        await _settle_one(second)
        assert await second.balance_of(info.pay_to) == 5_000_000
        await first.stop()  # the crashed object's stop must leave the new anvil alone
        assert await second.balance_of(info.pay_to) == 5_000_000
    finally:
        await first.stop()
        await second.stop()


async def test_background_checkpoint_survives_a_crash_without_explicit_checkpoint(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    await first.start()
    payer, nonce = await _settle_one(first)
    state = tmp_path / "devnet" / "state.json"
    for _ in range(200):  # the checkpointer writes within ~0.1 s of the block; give it up to 4 s
        if "0x" + nonce.hex() in state.read_text():
            break
        await asyncio.sleep(0.02)
    await _crash(first)
    second = Devnet(tmp_path)
    await second.start()
    try:
        assert (await _snapshot(second, payer, nonce))[1:] == (7_500_000, 2_500_000, 100_000_000, True)
    finally:
        await first.stop()
        await second.stop()


async def test_clean_stop_then_start_keeps_payments(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    await first.start()
    payer, nonce = await _settle_one(first)
    before = await _snapshot(first, payer, nonce)
    pid = _anvil_pid(first)
    await first.stop()
    assert not anvil.pid_alive(pid)
    devnet_dir = tmp_path / "devnet"
    assert not (devnet_dir / "exit-state.json").exists()  # anvil's exit dump became the checkpoint
    assert not (devnet_dir / "anvil.pid").exists()

    second = Devnet(tmp_path)
    await second.start()
    try:
        assert await _snapshot(second, payer, nonce) == before
    finally:
        await second.stop()


async def test_second_object_reuses_the_running_anvil(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    info = await first.start()
    second = Devnet(tmp_path)
    try:
        assert (await second.start()).rpc_url == info.rpc_url
        assert second.reused
        pid = _anvil_pid(first)
        await second.fund(info.pay_to, 9)  # the shared minter key stays usable from both objects
        await first.fund(info.pay_to, 1)
        await second.stop()
        assert anvil.pid_alive(pid)  # still used by `first`
        assert await first.balance_of(info.pay_to) == 10
        await first.stop()
        assert not anvil.pid_alive(pid)
    finally:
        await second.stop()
        await first.stop()


async def test_torn_exit_dump_is_ignored(tmp_path: Path) -> None:
    first = Devnet(tmp_path)
    await first.start()
    payer, nonce = await _settle_one(first)
    await first.checkpoint()
    await _crash(first)
    (tmp_path / "devnet" / "exit-state.json").write_text('{"block": {"number": ')  # killed mid-write
    second = Devnet(tmp_path)
    await second.start()
    try:
        assert (await _snapshot(second, payer, nonce))[4] is True
        assert not (tmp_path / "devnet" / "exit-state.json").exists()
    finally:
        await first.stop()
        await second.stop()


async def test_chain_id_of_an_existing_devnet_is_kept(tmp_path: Path) -> None:
    net = Devnet(tmp_path)
    await net.start()
    await net.stop()
    with pytest.raises(ConfigError, match="chain id 31337"):
        await Devnet(tmp_path, chain_id=8453).start()


async def test_other_chain_id(tmp_path: Path) -> None:
    net = Devnet(tmp_path, chain_id=8453, demo_funds_micros=0)
    info = await net.start()
    try:
        assert (info.chain_id, info.network) == (8453, "eip155:8453")
        assert await net.rpc.chain_id() == 8453
        assert await net.balance_of(info.demo_payer) == 0
    finally:
        await net.stop()
