"""Money on chains less kind than anvil: every settlement path through a fault-injecting RPC in front of the
devnet (node dialects, front-runs, cancellations, dropped transactions, rate limits, outages). Whatever the
node says, the payer is charged exactly when the chain shows the quoted transfer, a charge always ends in a
job, a 402 never follows a broadcast that may land, and the ledger audit balances afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from studio402.backends.base import FailureCode
from studio402.chain.devnet import Devnet
from studio402.chain.token import TransferAuthorization, encode_transfer_with_authorization
from studio402.cli.ledger import run_audit
from studio402.payments.ledger import PaymentState
from tests.chainfaults import Dialect, FaultyRpc, cancel_first, frontrun
from tests.devnet_fixture import Payer, bystander, new_payer
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import (
    BODY,
    GENERATE,
    PaidServer,
    challenge,
    network_config,
    payment_header,
    running_server,
    transfers_from,
)
from tests.server import free_port, serve

PRICE = 67_000  # nano-banana 1K
SECRET = "topsecretrpckey"  # an RPC URL carries a provider key: it must never reach a client


@pytest.fixture(params=["automine", "1s-blocks"])
def chain(request: pytest.FixtureRequest) -> Devnet:
    """Every money path here runs on automine and on a chain with a 1 s block clock."""
    name = "devnet" if request.param == "automine" else "devnet_blocks"
    devnet: Devnet = request.getfixturevalue(name)
    return devnet


@contextlib.asynccontextmanager
async def faulty_server(
    devnet: Devnet, data: Path, **overrides: Any
) -> AsyncIterator[tuple[PaidServer, FaultyRpc]]:
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        network = network_config(devnet.info, rpc_url=f"{proxy.url}/v2/{SECRET}?apikey={SECRET}")
        settings = {"payments.networks": [network], "payments.settle_timeout_seconds": 8, **overrides}
        async with running_server(devnet, data, overrides=settings) as server:
            yield server, proxy


async def post(http: httpx.AsyncClient, header: str) -> httpx.Response:
    response = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
    assert SECRET not in response.text and SECRET not in str(response.headers), response.text
    return response


async def charged(devnet: Devnet, payer: Payer) -> int:
    return sum(value for _, value, _ in await transfers_from(devnet, payer.address))


async def settle_all(server: PaidServer, *, rounds: int = 60) -> None:
    """Run the reconciler until no payment is left settling."""
    for _ in range(rounds):
        await server.wiring.engine.reconcile()
        if not await server.wiring.engine._need_ledger().settling():
            return
        await asyncio.sleep(0.25)
    raise AssertionError("payments still settling")


async def audit_clean(server: PaidServer) -> None:
    report = await run_audit(server.settings)
    assert report.ok, report.problems


async def job_status(server: PaidServer, job_id: str) -> str:
    job = await server.wiring.jobs.get(job_id)
    assert job is not None
    return job.status.value


@pytest.mark.parametrize("dialect", [Dialect.GETH_TIMEOUT, Dialect.RETH_TIMEOUT, Dialect.NO_SYNC])
async def test_node_dialects_of_a_slow_sync_send_charge_once_with_a_job(
    chain: Devnet, tmp_path: Path, dialect: Dialect
) -> None:
    """Finding 1: geth's "added to the pool but not processed in 2s" (code 4) was read as "nothing sent":
    502, the transfer landed, the payment was marked failed and a retry got 402."""
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        proxy.sync_dialect(dialect)
        header = payment_header(chain, payer, await challenge(http))
        first = await post(http, header)
        assert first.status_code in (200, 202), first.text
        await settle_all(server)
        again = await post(http, header)
        assert again.status_code == 200, again.text
        assert again.json()["jobId"] == first.json()["jobId"]
        assert await charged(chain, payer) == PRICE
        await audit_clean(server)


async def test_a_front_run_is_a_payment_and_gets_its_job(chain: Devnet, tmp_path: Path) -> None:
    """Finding 2: a bystander copies the authorization from the mempool and lands it first; our transaction
    reverts. The money reached payTo: that is a payment, not a 402 "nothing was charged"."""
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        proxy.before_send(lambda raw: frontrun(chain, raw))
        response = await post(http, payment_header(chain, payer, await challenge(http)))
        assert response.status_code in (200, 202), response.text
        await settle_all(server)
        job_id = response.json()["jobId"]
        assert await job_status(server, job_id) in ("pending", "loading", "complete")
        [(_, value, tx)] = await transfers_from(chain, payer.address)
        assert value == PRICE
        record = await server.wiring.engine._need_ledger().get_by_id(
            (await server.wiring.jobs.get(job_id)).payment_id  # type: ignore[union-attr,arg-type]
        )
        assert record is not None and record.state is PaymentState.SETTLED and record.tx_hash == tx
        await audit_clean(server)


async def test_a_cancellation_before_settling_is_not_a_payment(chain: Devnet, tmp_path: Path) -> None:
    """The payer cancels the authorization and the cancellation lands before our transfer: not charged."""
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        header = payment_header(chain, payer, await challenge(http))
        proxy.before_send(lambda raw: cancel_first(chain, payer.key, raw))
        response = await post(http, header)
        assert response.status_code == 402, response.text
        assert response.json()["code"] == "authorization_canceled"
        assert await charged(chain, payer) == 0
        await audit_clean(server)


async def test_a_cancellation_during_an_unknown_outcome_is_not_a_free_job(
    chain: Devnet, tmp_path: Path
) -> None:
    """Finding 3: after an unknown outcome the reconciler took `authorizationState == true` as paid, but
    cancelAuthorization sets it too: the payer got the job for free."""
    payer = await new_payer(chain, 1_000_000)
    overrides = {"payments.settle_timeout_seconds": 1}
    async with faulty_server(chain, tmp_path / "d", **overrides) as (server, proxy), server.client() as http:
        header = payment_header(chain, payer, await challenge(http))
        proxy.drop_next_sends(1_000)  # the node never gets our transaction: outcome unknown
        response = await post(http, header)
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        await cancel_first(chain, payer.key, None, nonce=_nonce_of(header))
        proxy.drop_next_sends(0)
        await settle_all(server)
        assert await job_status(server, job_id) == "failed"
        assert await charged(chain, payer) == 0
        await audit_clean(server)


async def test_a_dropped_transaction_is_sent_again_and_settles_once(chain: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        proxy.drop_next_sends(1)  # accepted, then lost by the node
        response = await post(http, payment_header(chain, payer, await challenge(http)))
        assert response.status_code in (200, 202), response.text
        await settle_all(server)
        assert await charged(chain, payer) == PRICE
        await audit_clean(server)


async def test_rate_limits_while_settling_charge_once(chain: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        header = payment_header(chain, payer, await challenge(http))
        proxy.rate_limit_method("eth_sendRawTransactionSync", 1)
        proxy.rate_limit_method("eth_getTransactionReceipt", 3)
        response = await post(http, header)
        assert response.status_code in (200, 202), response.text
        await settle_all(server)
        assert await charged(chain, payer) == PRICE
        await audit_clean(server)


async def test_an_outage_before_broadcast_charges_nothing_and_the_header_still_pays(
    chain: Devnet, tmp_path: Path
) -> None:
    payer = await new_payer(chain, 1_000_000)
    async with faulty_server(chain, tmp_path / "d") as (server, proxy), server.client() as http:
        header = payment_header(chain, payer, await challenge(http))
        proxy.outage(True)
        down = await post(http, header)
        assert down.status_code == 502, down.text
        assert await charged(chain, payer) == 0
        proxy.outage(False)
        paid = await post(http, header)
        assert paid.status_code == 200, paid.text
        assert await charged(chain, payer) == PRICE
        await audit_clean(server)


async def test_a_replay_after_valid_before_returns_its_job(devnet: Devnet, tmp_path: Path) -> None:
    """Finding 5: verification ran before the ledger lookup, so a client that lost the first answer and
    retried after `validBefore - 6 s` got a 402 instead of its job, and paid again."""
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "d") as server, server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        first = await post(http, header)
        assert first.status_code == 200, first.text
        later = time.time() + 3_600
        server.wiring.engine._clock = lambda: later  # the retry comes after the authorization expired
        replay = await post(http, header)
        assert replay.status_code == 200, replay.text
        assert replay.json()["jobId"] == first.json()["jobId"]
    assert await charged(devnet, payer) == PRICE


async def test_expiry_is_judged_by_the_chain_clock_not_ours(devnet: Devnet, tmp_path: Path) -> None:
    """Finding 9: the reconciler decided "not charged" by the server's clock; a server clock ahead of the
    chain failed a payment whose transaction could still land."""
    payer = await new_payer(devnet, 1_000_000)
    overrides = {"payments.settle_timeout_seconds": 1}
    async with faulty_server(devnet, tmp_path / "d", **overrides) as (server, proxy), server.client() as http:
        header = payment_header(devnet, payer, await challenge(http), valid_before=int(time.time()) + 60)
        proxy.drop_next_sends(1_000)
        response = await post(http, header)
        assert response.status_code == 202, response.text
        ahead = time.time() + 3_600
        server.wiring.engine._clock = lambda: ahead  # our clock says expired; the chain's does not
        await server.wiring.engine.reconcile()
        [record] = await server.wiring.engine._need_ledger().settling()
        assert record.state is PaymentState.SETTLING
        proxy.drop_next_sends(0)  # the node gets it again: the reconciler re-sends the same bytes
        await settle_all(server)
        assert await job_status(server, response.json()["jobId"]) in ("pending", "loading", "complete")
        assert await charged(devnet, payer) == PRICE
        await audit_clean(server)


def _nonce_of(header: str) -> str:
    from tests.paid_support import decode_header

    nonce: str = decode_header(header)["payload"]["authorization"]["nonce"]
    return nonce


async def test_one_failing_reconciler_step_does_not_skip_the_others(devnet: Devnet, tmp_path: Path) -> None:
    """Finding 9: an exception in the payments step of `Reconciler.reconcile` skipped the refund steps."""
    async with running_server(devnet, tmp_path / "d") as server:
        wiring = server.wiring
        ran: list[str] = []

        async def broken() -> dict[str, int]:
            raise RuntimeError("ledger unavailable")

        async def refunds() -> int:
            ran.append("refunds")
            return 0

        wiring.engine.reconcile = broken  # type: ignore[method-assign]
        wiring.refunds.reconcile = refunds  # type: ignore[method-assign]
        assert await wiring.reconciler.reconcile() == ["payments"]
        assert ran == ["refunds"]


@pytest.mark.parametrize("dialect", [Dialect.GETH_TIMEOUT, Dialect.RETH_TIMEOUT])
async def test_a_refund_through_an_unkind_node_is_sent_once(
    chain: Devnet, tmp_path: Path, dialect: Dialect
) -> None:
    """A moderated job's on-chain refund, sent while the node answers in another dialect and loses a send."""
    payer = await new_payer(chain, 1_000_000)
    registry = only(ScriptedBackend(fail=FailureCode.MODERATED))
    async with (
        FaultyRpc(chain.info.rpc_url) as proxy,
        running_server(
            chain,
            tmp_path / "d",
            registry=registry,
            overrides={"payments.networks": [network_config(chain.info, rpc_url=proxy.url)]},
        ) as server,
        server.client() as http,
    ):
        header = payment_header(chain, payer, await challenge(http))
        paid = await post(http, header)
        assert paid.status_code == 200, paid.text
        proxy.sync_dialect(dialect)
        proxy.drop_next_sends(1)
        for _ in range(200):
            job = await server.wiring.jobs.get(paid.json()["jobId"])
            assert job is not None
            if job.refund and job.refund["status"] == "done":
                break
            await server.wiring.reconciler.reconcile()
            await asyncio.sleep(0.1)
        assert job is not None and job.refund is not None and job.refund["status"] == "done", job
        await audit_clean(server)
    assert await chain.balance_of(payer.address) == 1_000_000  # paid once, refunded once


def lying_facilitator(devnet: Devnet) -> tuple[FastAPI, list[str]]:
    """A facilitator whose transfer lands (sent by its own bystander key) but which answers
    `success: false` with no transaction, as one that lost track of its broadcast would."""
    app, landed = FastAPI(), []

    @app.post("/verify")
    async def verify(body: dict[str, Any]) -> dict[str, Any]:
        return {"isValid": True, "payer": body["paymentPayload"]["payload"]["authorization"]["from"]}

    @app.post("/settle")
    async def settle(body: dict[str, Any]) -> dict[str, Any]:
        inner = body["paymentPayload"]["payload"]
        auth = TransferAuthorization.from_json(inner["authorization"])
        data = encode_transfer_with_authorization(auth, bytes.fromhex(inner["signature"][2:]))
        receipt = await (await bystander(devnet)).send_and_wait(devnet.info.token, data, timeout=30)
        landed.append(str(receipt["transactionHash"]))
        return {"success": False, "errorReason": "transaction_failed", "transaction": "", "network": ""}

    return app, landed


async def test_a_facilitator_word_is_not_a_receipt(devnet: Devnet, tmp_path: Path) -> None:
    """The remote facilitator says the settlement failed, yet the transfer is on chain: the chain, not the
    facilitator's answer, says the payer was charged, so the payer gets the job."""
    payer = await new_payer(devnet, 1_000_000)
    app, landed = lying_facilitator(devnet)
    async with serve(app, free_port()) as facilitator_url:
        network = network_config(devnet.info, settler_key=None, facilitator_url=facilitator_url)
        overrides = {"payments.networks": [network]}
        async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
            async with server.client() as http:
                paid = await post(http, payment_header(devnet, payer, await challenge(http)))
                assert paid.status_code in (200, 202), paid.text
                await settle_all(server)
                job = await server.wiring.jobs.get(paid.json()["jobId"])
                assert job is not None and job.status.value != "failed"
            await audit_clean(server)
    [(_, value, tx)] = await transfers_from(devnet, payer.address)
    assert (value, [tx]) == (PRICE, landed)
