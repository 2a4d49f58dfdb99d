"""A smart wallet (EIP-1271) signs in to poll its job: the contract is asked, through the chain port."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from eth_account import Account
from sqlalchemy import insert

from studio402.catalog import CATALOG
from studio402.chain.devnet import Devnet
from studio402.chain.wallet import SettlerWallet
from studio402.db.ledger_store import job_row
from studio402.db.schema import jobs
from studio402.payments.ledger import NewJob, new_id
from tests.paid_support import running_server
from tests.siwx_support import sign_in

WALLET_SOURCE = Path(__file__).resolve().parents[1] / "fakes" / "TestWallet.vy"


async def deploy_wallet(devnet: Devnet, owner: str) -> str:
    # A dev dependency: compiled here, as it is a test fixture, not a product contract.
    import vyper  # type: ignore[import-untyped]
    from eth_abi.abi import encode

    out = vyper.compile_code(WALLET_SOURCE.read_text(), output_formats=["bytecode"])
    code = bytes.fromhex(out["bytecode"].removeprefix("0x")) + encode(["address"], [owner])
    deployer = Account.create()
    await devnet.rpc.request("anvil_setBalance", [deployer.address, hex(10**19)])
    wallet = SettlerWallet(devnet.rpc, "0x" + bytes(deployer.key).hex(), gas_limit_default=None)
    receipt = await wallet.send_and_wait(None, code, timeout=30)
    return str(receipt["contractAddress"])


async def test_a_contract_wallet_polls_its_job(devnet: Devnet, tmp_path: Path) -> None:
    owner, stranger = Account.create(), Account.create()
    contract = await deploy_wallet(devnet, owner.address)
    async with running_server(devnet, tmp_path / "d") as server:
        route = CATALOG.get("grok", "generate")
        request = CATALOG.validate(route, {"prompt": "held"})
        job = NewJob(
            new_id("job"),
            contract.lower(),
            route.model,
            route.operation,
            request.canonical_json,
            request.fingerprint,
            0,
        )
        row = job_row(job, held=True, payment_id=None, now=time.time())
        await server.wiring.jobs.db.write(lambda conn: conn.execute(insert(jobs).values(row)))
        path = f"/api/jobs/{job.id}"
        chain_id = devnet.info.chain_id
        async with httpx.AsyncClient(base_url=server.base) as http:
            ok = await http.get(
                path,
                headers={"SIGN-IN-WITH-X": sign_in(owner, server.base, path, chain_id, address=contract)},
            )
            forged = await http.get(
                path,
                headers={"SIGN-IN-WITH-X": sign_in(stranger, server.base, path, chain_id, address=contract)},
            )
    assert ok.status_code == 200 and ok.json()["jobId"] == job.id
    assert forged.status_code == 402 and forged.json()["code"] == "siwx_bad_signature"
