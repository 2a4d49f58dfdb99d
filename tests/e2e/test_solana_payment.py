"""x402 `exact` on Solana through the real generate route: the official x402 client (ExactSvmScheme) pays the
402's Solana offer on the Solana devnet; a replay of the same transaction returns the same job."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from solders.keypair import Keypair
from sqlalchemy import update
from x402 import x402Client
from x402.mechanisms.svm.exact import ExactSvmScheme
from x402.mechanisms.svm.signers import KeypairSigner
from x402.schemas import PaymentRequired

from studio402.backends.base import FailureCode
from studio402.chain.devnet import Devnet
from studio402.chain.rpc import AsyncRpc
from studio402.cli.ledger import run_audit
from studio402.config import Settings
from studio402.db import schema
from studio402.db.engine import database_url, open_database
from studio402.solana import process
from studio402.solana.audit import SvmAuditChain
from studio402.solana.devnet import NETWORK
from studio402.solana.faucet import fund_solana
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import BODY, GENERATE, running_server

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")  # solana-py's sync client


async def test_the_official_svm_client_pays_once_and_a_replay_gets_the_same_job(
    devnet: Devnet, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    registry = only(ScriptedBackend())
    async with running_server(devnet, data, registry=registry, overrides={"devnet.solana": True}) as server:
        payer = Keypair()
        await fund_solana(data, str(payer.pubkey()), 1_000_000)
        async with server.client() as http:
            unpaid = await http.post(GENERATE, json=BODY)
            assert unpaid.status_code == 402
            required = PaymentRequired.model_validate_json(
                base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"])
            )
            assert NETWORK in {a.network for a in required.accepts}
            solana = [a for a in required.accepts if a.network == NETWORK]
            client = x402Client()
            rpc_url, _ = await process.ensure_running(data)  # the devnet the server started
            client.register("solana:*", ExactSvmScheme(KeypairSigner(payer), rpc_url=rpc_url))
            client.set_spend_controls(False)  # a devnet mint is not in its default-asset table
            only_solana = required.model_copy(update={"accepts": solana})
            payload = await client.create_payment_payload(only_solana)
            header = base64.b64encode(
                payload.model_dump_json(by_alias=True, exclude_none=True).encode()
            ).decode()
            paid = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
            replay = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        assert paid.status_code == 200, paid.text
        receipt = json.loads(base64.b64decode(paid.headers["PAYMENT-RESPONSE"]))
        assert receipt["success"] and receipt["network"] == NETWORK
        assert replay.status_code == 200 and replay.json()["jobId"] == paid.json()["jobId"]
        report = await run_audit(server.settings)
        [totals] = [t for key, t in report.totals.items() if key.startswith(NETWORK)]
        assert totals.settled == 67_000  # the ledger counts one payment on the Solana rail
        assert report.ok, report.problems  # and the chain shows its transfer payer -> payTo
        await _forge_amount(server.settings, NETWORK, "66000")
        forged = await run_audit(server.settings)
    assert not forged.ok
    assert any("no Transfer" in p and "66000" in p for p in forged.problems), forged.problems


async def _forge_amount(settings: Settings, network: str, amount: str) -> None:
    """A ledger row that disagrees with the chain: the settled Solana payment's amount rewritten."""
    db = await open_database(database_url(settings.database.url, settings.data_dir))
    try:
        await db.write(
            lambda c: c.execute(
                update(schema.payments).where(schema.payments.c.network == network).values(amount=amount)
            )
        )
    finally:
        await db.dispose()


async def test_a_failed_solana_job_is_refunded_to_the_payer_exactly(devnet: Devnet, tmp_path: Path) -> None:
    """A moderated job paid on Solana is refunded on chain to the payer's own address. Base58 is
    case-sensitive: the ledger keeps the payer exactly (a lowercased key names no account at all)."""
    data = tmp_path / "d"
    registry = only(ScriptedBackend(fail=FailureCode.MODERATED))
    async with running_server(devnet, data, registry=registry, overrides={"devnet.solana": True}) as server:
        payer = Keypair()
        await fund_solana(data, str(payer.pubkey()), 1_000_000)
        async with server.client() as http:
            unpaid = await http.post(GENERATE, json=BODY)
            required = PaymentRequired.model_validate_json(
                base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"])
            )
            client = x402Client()
            rpc_url, _ = await process.ensure_running(data)
            client.register("solana:*", ExactSvmScheme(KeypairSigner(payer), rpc_url=rpc_url))
            client.set_spend_controls(False)
            offers = [a for a in required.accepts if a.network == NETWORK]
            payload = await client.create_payment_payload(required.model_copy(update={"accepts": offers}))
            signed = payload.model_dump_json(by_alias=True, exclude_none=True)
            paid = await http.post(
                GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": base64.b64encode(signed.encode()).decode()}
            )
        assert paid.status_code == 200, paid.text
        job_id = paid.json()["jobId"]
        for _ in range(100):
            job = await server.wiring.jobs.get(job_id)
            if job is not None and job.refund and job.refund["status"] == "done":
                break
            await server.wiring.reconciler.reconcile()
            await asyncio.sleep(0.1)
        assert job is not None and job.refund is not None and job.refund["status"] == "done", job
        assert job.payer == str(payer.pubkey())
        rpc = AsyncRpc(rpc_url)
        try:
            moved = await SvmAuditChain(rpc, offers[0].asset).transfers(job.refund["tx"])
        finally:
            await rpc.aclose()
    assert [(to, value) for _, to, value in moved] == [(str(payer.pubkey()), 67_000)]
