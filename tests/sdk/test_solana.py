"""The SDK pays x402 `exact` on Solana when its wallet has a Solana key, and signs in with that key."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from solders.keypair import Keypair

from studio402.chain.devnet import Devnet
from studio402.sdk import AsyncStudio, JobStatus, SolanaKey, Wallet
from studio402.solana import process
from studio402.solana.faucet import fund_solana
from tests.devnet_fixture import new_payer
from tests.paid_support import running_server, transfers_from

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")  # solana-py's sync client


async def test_pays_on_solana_and_signs_in_with_solana(devnet: Devnet, tmp_path: Path) -> None:
    data = tmp_path / "d"
    async with running_server(devnet, data, overrides={"devnet.solana": True}) as server:
        evm = await new_payer(devnet, 1_000_000)  # funded too: the SDK must still pay on Solana
        solana = Keypair()
        await fund_solana(data, str(solana.pubkey()), 1_000_000)
        rpc_url, _ = await process.ensure_running(data)
        wallet = Wallet(evm.key, solana=SolanaKey(bytes(solana), rpc_url))
        async with AsyncStudio(server.base, wallet, networks=("solana:",)) as studio:
            done = await studio.generate("nano-banana", "generate", {"prompt": "a crab"}, out_dir=tmp_path)
            jobs = await studio.jobs()
    assert done.status is JobStatus.COMPLETE and done.payment is not None
    assert str(done.payment["network"]).startswith("solana:")
    assert done.payment["payer"] == str(solana.pubkey())
    assert Image.open(done.files[0]).width > 0
    assert [j.job_id for j in jobs] == [done.job_id]  # read with the Solana key's sign-in
    assert await transfers_from(devnet, evm.address) == []
