"""The official Node client, @x402/fetch (installed by the test setup from npm), pays a route unmodified."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.devnet_fixture import new_payer
from tests.paid_support import BODY, GENERATE, PaidServer, transfers_from

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


async def test_x402_fetch_pays_and_gets_a_job(paid_server: PaidServer) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (the machine has it; the setup command installs @x402/fetch)"
    assert (NODE_DIR / "node_modules" / "@x402" / "fetch").is_dir(), "run scripts/setup --test first"
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 2_000_000)
    before = await devnet.balance_of(devnet.info.pay_to)
    proc = await asyncio.create_subprocess_exec(
        node,
        "pay.mjs",
        paid_server.base + GENERATE,
        payer.key,
        json.dumps(BODY),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["status"] == 200, result
    assert result["body"]["status"] == "pending" and result["body"]["jobId"].startswith("job_")
    receipt = result["receipt"]
    assert receipt["success"] is True and receipt["payer"] == payer.address.lower()
    assert await devnet.balance_of(payer.address) == 2_000_000 - 67_000
    assert await devnet.balance_of(devnet.info.pay_to) == before + 67_000
    [(to, value, tx)] = await transfers_from(devnet, payer.address)
    assert (to, value, tx) == (devnet.info.pay_to, 67_000, receipt["transaction"])
