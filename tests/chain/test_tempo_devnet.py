"""The Tempo devnet on a real `anvil --network tempo`: start, funding, reuse, persistence across restarts,
the expiring-nonce quirk, and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from studio402.chain import anvil
from studio402.chain.tempo_devnet import (
    NONCE_PRECOMPILE,
    PATH_USD,
    TempoDevnet,
    expiring_nonce_slot,
    read_tempo_info,
)
from studio402.cli.main import app
from studio402.money import format_usd


async def test_start_fund_and_persist(tmp_path: Path) -> None:
    net = TempoDevnet(tmp_path)
    info = await net.start()
    try:
        assert info.currency == PATH_USD
        assert await net.rpc.chain_id() == info.chain_id == 42431
        payer = Account.create().address
        assert await net.balance_of(payer) == 0
        await net.fund(payer, 2_500_000)
        assert await net.balance_of(payer) == 2_500_000
        # A second user attaches to the same anvil.
        other = TempoDevnet(tmp_path)
        assert (await other.start()).rpc_url == info.rpc_url and other.reused
        await other.stop()
        assert await read_tempo_info(tmp_path) == info
    finally:
        await net.stop()
    assert await read_tempo_info(tmp_path) is None
    # Restarted from its dump: the funds are still there.
    again = TempoDevnet(tmp_path)
    await again.start()
    try:
        assert not again.reused
        assert await again.balance_of(payer) == 2_500_000
    finally:
        await again.stop()


async def test_crash_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    net = TempoDevnet(tmp_path)
    await net.start()
    payer = Account.create().address
    await net.fund(payer, 1_000_000)
    await net.checkpoint()
    record = anvil.read_record(net.root / "anvil.pid")
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    while anvil.pid_alive(record.pid):
        await asyncio.sleep(0.01)
    await net.stop()
    again = TempoDevnet(tmp_path)
    await again.start()
    try:
        assert await again.balance_of(payer) == 1_000_000
    finally:
        await again.stop()


async def test_reset_expiring_nonce_clears_the_counter(tmp_path: Path) -> None:
    net = TempoDevnet(tmp_path)
    await net.start()
    try:
        address = Account.create().address
        slot = expiring_nonce_slot(address)
        await net.rpc.request("anvil_setStorageAt", [NONCE_PRECOMPILE, slot, "0x" + "00" * 31 + "01"])
        assert int(await net.rpc.request("eth_getStorageAt", [NONCE_PRECOMPILE, slot, "latest"]), 16) == 1
        await net.reset_expiring_nonce(address)
        assert int(await net.rpc.request("eth_getStorageAt", [NONCE_PRECOMPILE, slot, "latest"]), 16) == 0
    finally:
        await net.stop()


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_cli_info_and_fund(tmp_path: Path) -> None:
    assert "tempo" not in _cli(tmp_path, "devnet", "info")  # off by default
    shown = _cli(tmp_path, "devnet", "info", env={"STUDIO402_DEVNET__TEMPO": "true"})
    tempo = shown["tempo"]
    assert isinstance(tempo, dict)
    assert set(tempo) == {"rpcUrl", "chainId", "currency", "recipient"}
    assert tempo["currency"] == PATH_USD and tempo["chainId"] == 42431
    payer = Account.create().address
    funded = _cli(tmp_path, "devnet", "fund", payer, "1.5", "--rail", "tempo")
    assert funded["minted"] == funded["balance"] == format_usd(1_500_000)
    again = _cli(tmp_path, "devnet", "fund", payer, "1", "--rail", "tempo")
    assert again["balance"] == format_usd(2_500_000)


@pytest.mark.parametrize("bad", ["0x123", "nope"])
def test_cli_fund_refuses_a_bad_address(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(
        app, ["devnet", "fund", bad, "1", "--rail", "tempo", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2


def test_hmac_secret_is_made_once_per_data_dir(tmp_path: Path) -> None:
    first = TempoDevnet(tmp_path)
    first.root.mkdir(parents=True)
    secret = first.hmac_secret()
    assert len(secret) == 64 and TempoDevnet(tmp_path).hmac_secret() == secret
    assert (first.root / "mpp-secret").stat().st_mode & 0o777 == 0o600
    assert TempoDevnet(tmp_path / "other").root != first.root
