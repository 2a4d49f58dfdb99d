"""Failed, moderated and canceled-before-start jobs give the money back, per the operator's policy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from eth_account import Account
from x402.http.clients import x402HttpxClient

from studio402.backends.base import FailureCode
from studio402.chain.devnet import Devnet
from studio402.cli.ledger import run_audit
from studio402.sdk.client import x402_client
from tests.devnet_fixture import new_payer
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import (
    BODY,
    GENERATE,
    PaidServer,
    challenge,
    paid_job,
    payment_header,
    running_server,
    transfers_from,
)

PRICE = 67_000  # nano-banana 1K


async def ended(server: PaidServer, job_id: str, *, refund: bool = True) -> Any:
    for _ in range(400):
        job = await server.wiring.jobs.get(job_id)
        assert job is not None
        if job.status.is_terminal and (not refund or (job.refund and job.refund["status"] == "done")):
            return job
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} did not end: {job}")


async def test_moderated_job_is_refunded_on_chain(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(
        devnet, tmp_path / "d", registry=only(ScriptedBackend(fail=FailureCode.MODERATED))
    ) as server:
        job = await ended(server, await paid_job(server, payer.key))
        assert job.error_code == "moderated"
        assert job.refund["method"] == "onchain" and job.refund["amount"] == "0.067"
        report = await run_audit(server.settings)
    assert await devnet.balance_of(payer.address) == 1_000_000  # paid, then refunded
    refund_tx = job.refund["tx"]
    receipt = await devnet.rpc.get_transaction_receipt(refund_tx)
    assert receipt is not None and int(receipt["status"], 16) == 1
    assert report.ok, report.problems
    [totals] = report.totals.values()
    assert totals.settled == totals.refunded == PRICE


async def test_credit_refund_pays_for_the_next_call_without_a_new_payment(
    devnet: Devnet, tmp_path: Path
) -> None:
    payer = await new_payer(devnet, 1_000_000)
    gate_backend = ScriptedBackend(fail=FailureCode.NO_MEDIA)
    async with running_server(
        devnet, tmp_path / "d", registry=only(gate_backend), overrides={"payments.refund": "credit"}
    ) as server:
        first = await ended(server, await paid_job(server, payer.key))
        assert first.refund["method"] == "credit"
        assert await server.wiring.engine._need_ledger().credit_balance(payer.address.lower()) == PRICE
        gate_backend.fail = None
        transfers_before = len(await transfers_from(devnet, payer.address))
        # The official client signs in first (the 402 offers sign-in-with-x) and the credit pays.
        second = await ended(server, await paid_job(server, payer.key), refund=False)
        assert second.status.value == "complete"
        assert len(await transfers_from(devnet, payer.address)) == transfers_before
        assert await server.wiring.engine._need_ledger().credit_balance(payer.address.lower()) == 0
        # No credit left: the same client now pays on chain.
        third = await ended(server, await paid_job(server, payer.key, {"prompt": "another"}), refund=False)
        assert third.status.value == "complete"
        assert len(await transfers_from(devnet, payer.address)) == transfers_before + 1
        report = await run_audit(server.settings)
    assert report.ok, report.problems
    assert report.credit_refunded_micros == report.credit_spent_micros == PRICE


async def test_policy_none_keeps_the_money_and_the_audit_says_retained(
    devnet: Devnet, tmp_path: Path
) -> None:
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(
        devnet,
        tmp_path / "d",
        registry=only(ScriptedBackend(fail=FailureCode.MODERATED)),
        overrides={"payments.refund": "none"},
    ) as server:
        job = await ended(server, await paid_job(server, payer.key), refund=False)
        assert job.refund is None
        report = await run_audit(server.settings)
    assert report.ok and next(iter(report.totals.values())).retained == PRICE


async def test_cancel_before_start_refunds_and_after_start_does_not(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 5_000_000)
    gate = asyncio.Event()
    backend = ScriptedBackend(gate=gate)
    async with running_server(
        devnet, tmp_path / "d", registry=only(backend), overrides={"jobs.workers": 1}
    ) as server:
        running = await paid_job(server, payer.key, {"prompt": "first"})
        await asyncio.wait_for(backend.started.wait(), 10)  # the only worker is busy with it
        waiting = await paid_job(server, payer.key, {"prompt": "second"})
        async with x402HttpxClient(x402_client(payer.key), base_url=server.base, timeout=60) as http:
            canceled = await http.post(f"/api/jobs/{waiting}/cancel")
            started = await http.post(f"/api/jobs/{running}/cancel")
            again = await http.post(f"/api/jobs/{waiting}/cancel")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        assert started.status_code == 200 and started.json()["status"] == "canceled"
        assert again.status_code == 409
        gate.set()
        waiting_job = await ended(server, waiting)
        running_job = await ended(server, running, refund=False)
        assert waiting_job.refund["method"] == "onchain"
        assert running_job.refund is None and running_job.status.value == "canceled"
        report = await run_audit(server.settings)
    assert report.ok, report.problems


async def test_replayed_payment_after_refund_still_returns_the_same_job(
    devnet: Devnet, tmp_path: Path
) -> None:
    payer = await new_payer(devnet, 1_000_000)
    async with (
        running_server(
            devnet, tmp_path / "d", registry=only(ScriptedBackend(fail=FailureCode.MODERATED))
        ) as server,
        server.client() as http,
    ):
        header = payment_header(devnet, payer, await challenge(http))
        first = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        await ended(server, first.json()["jobId"])
        again = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
    assert again.status_code == 200 and again.json()["jobId"] == first.json()["jobId"]
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert Account.from_key(payer.key).address == payer.address
