"""The operator commands, run as the `studio402` executable: init, devnet, ledger audit, backends."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from eth_account import Account

from studio402.chain.devnet import Devnet
from tests.devnet_fixture import new_payer
from tests.paid_support import BODY, GENERATE, challenge, payment_header, running_server

CLI = str(Path(sys.executable).with_name("studio402"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_init_writes_a_config_that_serve_would_load(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    assert "[payments]" in (tmp_path / "studio402.toml").read_text()
    again = run("init", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
    assert run("init", "--force", cwd=tmp_path).returncode == 0


def test_devnet_info_and_fund(tmp_path: Path) -> None:
    info = run("devnet", "info", "--data-dir", "data", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert set(data) >= {"rpcUrl", "chainId", "token", "payTo"} and data["chainId"] == 31337
    address = Account.create().address
    funded = run("devnet", "fund", address, "12.5", "--data-dir", "data", cwd=tmp_path)
    assert funded.returncode == 0, funded.stderr
    assert json.loads(funded.stdout)["balance"] == "12.50"
    again = run("devnet", "fund", address, "0.5", "--data-dir", "data", cwd=tmp_path)
    assert json.loads(again.stdout)["balance"] == "13.00"  # the chain kept the first mint
    assert (
        json.loads(run("devnet", "info", "--data-dir", "data", cwd=tmp_path).stdout)["token"] == data["token"]
    )
    bad = run("devnet", "fund", "not-an-address", "1", "--data-dir", "data", cwd=tmp_path)
    assert bad.returncode == 2 and "address" in bad.stderr


def test_backends_check_reports_every_route(tmp_path: Path) -> None:
    result = run("backends", "check", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 25 and all(r["servedBy"] == "preview" for r in rows)
    config = tmp_path / "c.toml"
    config.write_text(
        '[backends]\ndefault = ["preview"]\n[backends.routes]\n"veo-3.1" = ["veo"]\n'
        '[backends.providers.veo]\ntype = "vertex-veo"\n'
    )
    missing = run("backends", "check", "--config", str(config), "--data-dir", "data", cwd=tmp_path)
    assert missing.returncode == 1  # veo-3.1 has no ready backend: its only one lacks credentials
    veo = next(r for r in json.loads(missing.stdout) if r["route"] == "veo-3.1/generate")
    assert veo["servedBy"] is None and veo["backends"][0]["missing"]


async def test_ledger_audit_balances_and_catches_a_forged_row(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = tmp_path / "data"
    async with running_server(devnet, data) as server, server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        assert (
            await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        ).status_code == 200
        config = tmp_path / "c.toml"
        network = server.settings.payments.networks[0]
        lines = [
            f'data_dir = "{data}"',
            "[[payments.networks]]",
            f'network = "{network.network}"',
            f'asset = "{network.asset}"',
            f'asset_name = "{network.asset_name}"',
            f'pay_to = "{network.pay_to}"',
            f'rpc_url = "{network.rpc_url}"',
            f'settler_key = "{devnet.info.settler_key}"',
            f'refund_key = "{devnet.info.refund_key}"',
        ]
        config.write_text("\n".join(lines) + "\n")
    ok = run("ledger", "audit", "--config", str(config), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and next(iter(report["networks"].values()))["settled"] == 67_000
    # Someone edits the ledger: a settled payment whose transfer is not on chain.
    with sqlite3.connect(data / "studio402.db") as db:
        db.execute("update payments set amount = '68000'")
    forged = run("ledger", "audit", "--config", str(config), cwd=tmp_path)
    assert forged.returncode == 1
    assert any("no Transfer" in p for p in json.loads(forged.stdout)["problems"])
