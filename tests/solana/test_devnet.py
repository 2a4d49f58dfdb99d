"""The Solana devnet: one server per data dir (reused, state kept across restarts), the faucet CLI, the reads
a wallet makes through the official solana-py client, and the outcome rules of the settler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from solana.rpc.api import Client
from solana.rpc.types import TokenAccountOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from studio402.payments.outcome import SettleStatus
from studio402.solana import process
from studio402.solana.devnet import NETWORK, associated_token_account, devnet_keys
from studio402.solana.faucet import fund_solana, solana_info
from studio402.solana.rpc_server import SolanaRpcServer
from studio402.solana.settlement import SvmFacts, decide

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")
CLI = str(Path(sys.executable).with_name("studio402"))


async def test_the_server_is_shared_and_keeps_its_state_across_restarts(tmp_path: Path) -> None:
    owner = Keypair().pubkey()
    url, started = await process.ensure_running(tmp_path)
    try:
        assert started
        assert await process.ensure_running(tmp_path) == (url, False)  # a second caller reuses it
        funded = await fund_solana(tmp_path, str(owner), 2_500_000)
        assert funded["balance"] == "2.50"
    finally:
        await process.stop(tmp_path)
    info = await solana_info(tmp_path)  # starts a new server from the saved state, then stops it
    assert info["network"] == NETWORK and info["running"] is False
    assert info["mint"] == str(devnet_keys(tmp_path)[2].pubkey())
    assert (await fund_solana(tmp_path, str(owner), 1_000_000))["balance"] == "3.50"


def test_cli_fund_creates_the_token_account_and_mints(tmp_path: Path) -> None:
    owner = str(Keypair().pubkey())
    args = [CLI, "devnet", "fund", owner, "1.5", "--rail", "solana", "--data-dir", str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    mint = devnet_keys(tmp_path)[2].pubkey()
    assert out["balance"] == "1.50"
    assert out["tokenAccount"] == str(associated_token_account(Pubkey.from_string(owner), mint))
    bad = subprocess.run([*args[:3], "0xnot-solana", *args[4:]], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "invalid_address" in bad.stderr


def test_wallet_reads_through_the_official_client(sol_server: SolanaRpcServer) -> None:
    dev = sol_server.devnet
    owner = Keypair().pubkey()
    dev.fund(str(owner), 1_234_567)
    client = Client(sol_server.url)
    ata = associated_token_account(owner, dev.mint.pubkey())
    assert client.get_token_account_balance(ata).value.amount == "1234567"
    accounts = client.get_token_accounts_by_owner_json_parsed(owner, TokenAccountOpts(mint=dev.mint.pubkey()))
    [entry] = accounts.value
    parsed = entry.account.data.parsed
    assert isinstance(parsed, dict) and isinstance(parsed["info"], dict)
    assert entry.pubkey == ata and parsed["info"]["tokenAmount"] == {
        "amount": "1234567",
        "decimals": 6,
        "uiAmount": 1.234567,
        "uiAmountString": "1.234567",
    }
    assert client.get_balance(dev.fee_payer.pubkey()).value > 0
    assert client.get_minimum_balance_for_rent_exemption(165).value > 0
    mint = client.get_account_info(dev.mint.pubkey()).value
    assert mint is not None and mint.data[44] == 6  # the decimals byte, where the x402 client reads it


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (SvmFacts("s", found=True), SettleStatus.SETTLED),
        (SvmFacts("s", found=True, blockhash_valid=False), SettleStatus.SETTLED),
        (SvmFacts("s", found=True, err="InstructionError"), SettleStatus.REVERTED),
        (SvmFacts("s", found=False, blockhash_valid=False), SettleStatus.REVERTED),
        (SvmFacts("s", found=False, blockhash_valid=True), SettleStatus.UNKNOWN),
    ],
)
def test_outcome_from_chain_facts(facts: SvmFacts, status: SettleStatus) -> None:
    outcome = decide(facts)
    assert outcome.status is status and outcome.tx_hash == "s"
