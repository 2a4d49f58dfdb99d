"""Crashes and unknown outcomes: money that moved always ends in a job, and the audit balances."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from studio402.catalog import CATALOG
from studio402.chain.devnet import Devnet
from studio402.cli.ledger import run_audit
from studio402.errors import ChainError
from studio402.payments.ledger import PaymentState
from tests.chainfaults import FaultyRpc
from tests.devnet_fixture import Payer, new_payer
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

ROUTE = CATALOG.get("nano-banana", "generate")


class Crash(BaseException):
    """The process dies here: nothing after it runs."""


async def crash(*args: Any, **kwargs: Any) -> None:
    raise Crash


async def pay_directly(server: PaidServer, header: str) -> Any:
    wiring = server.wiring
    request = CATALOG.validate(ROUTE, BODY)
    return await wiring.engine.pay(header, request, CATALOG.quote(request, 0), wiring.paid.resource(ROUTE))


async def wait_complete(server: PaidServer, job_id: str) -> None:
    for _ in range(400):
        job = await server.wiring.jobs.get(job_id)
        if job is not None and job.status.value == "complete":
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} did not complete")


async def test_crash_between_settlement_and_job_release(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = tmp_path / "data"
    async with running_server(devnet, data) as server, server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        server.wiring.engine._ledger.finish_settlement = crash  # type: ignore[union-attr,method-assign]
        with pytest.raises(Crash):
            await pay_directly(server, header)
        [(_, value, _)] = await transfers_from(devnet, payer.address)  # the money moved
        assert value == 67_000
    # Restart on the same data dir: the start-up reconciler finds the transfer and releases the job.
    async with running_server(devnet, data) as server, server.client() as http:
        retry = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        assert retry.status_code == 200, retry.text
        await wait_complete(server, retry.json()["jobId"])
        report = await run_audit(server.settings)
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert report.ok, report.problems
    assert next(iter(report.totals.values())).delivered == 67_000


async def test_crash_after_signing_before_broadcast(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = tmp_path / "data"
    async with running_server(devnet, data) as server, server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        ledger = server.wiring.engine._ledger
        original = ledger.begin_settlement  # type: ignore[union-attr]

        async def record_then_crash(*args: Any, **kwargs: Any) -> None:
            await original(*args, **kwargs)
            raise Crash

        ledger.begin_settlement = record_then_crash  # type: ignore[union-attr,method-assign]
        with pytest.raises(Crash):
            await pay_directly(server, header)
        assert await transfers_from(devnet, payer.address) == []  # never broadcast
    async with running_server(devnet, data) as server:
        ledger = server.wiring.engine._ledger
        for _ in range(20):  # the start-up pass re-sent the signed transaction; a later pass sees it mined
            records = await ledger.settling()  # type: ignore[union-attr]
            if not records:
                break
            await server.wiring.reconciler.reconcile()
            await asyncio.sleep(0.05)
        async with server.client() as http:
            retry = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        assert retry.status_code == 200, retry.text
        await wait_complete(server, retry.json()["jobId"])
        report = await run_audit(server.settings)
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert report.ok, report.problems


async def test_receipt_timeout_answers_202_and_the_reconciler_settles(devnet: Devnet, tmp_path: Path) -> None:
    """The node takes the transaction but no receipt comes in time (here: it lost it, on automine or a block
    clock alike): 202, never 402; a replay gets the same job; the reconciler re-sends and settles."""
    payer = await new_payer(devnet, 1_000_000)
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        overrides = {
            "payments.settle_timeout_seconds": 0.5,
            "payments.networks": [network_config(devnet.info, rpc_url=proxy.url)],
        }
        async with (
            running_server(devnet, tmp_path / "data", overrides=overrides) as server,
            server.client() as http,
        ):
            header = payment_header(devnet, payer, await challenge(http))
            proxy.drop_next_sends(1_000)
            pending = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
            replay = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
            proxy.drop_next_sends(0)
            assert pending.status_code == 202, pending.text  # never a 402 once broadcast
            assert pending.json()["payment"]["status"] == "settling"
            job_id = pending.json()["jobId"]
            assert replay.status_code == 202 and replay.json()["jobId"] == job_id
            job = await server.wiring.jobs.get(job_id)
            assert job is not None and job.held and job.payment_id is not None
            ledger = server.wiring.engine._need_ledger()
            for _ in range(100):  # the first pass re-sends; a later one sees it mined
                await server.wiring.reconciler.reconcile()
                record = await ledger.get_by_id(job.payment_id)
                if record is not None and record.state is PaymentState.SETTLED:
                    break
                await asyncio.sleep(0.1)
            assert record is not None and record.state is PaymentState.SETTLED
            await wait_complete(server, job_id)
            settled = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
            assert settled.status_code == 200 and settled.json()["jobId"] == job_id
            report = await run_audit(server.settings)
    assert report.ok, report.problems
    assert len(await transfers_from(devnet, payer.address)) == 1


async def refuse_log_scan(*args: Any, **kwargs: Any) -> str | None:
    raise ChainError("block range too large", code="rpc_error")  # what public RPCs answer a scan from 0


async def signed_not_broadcast(server: PaidServer, payer: Payer) -> None:
    """A payment whose settlement was signed and recorded, then the process died before broadcasting."""
    async with server.client() as http:
        header = payment_header(server.devnet, payer, await challenge(http))
    ledger = server.wiring.engine._ledger
    original = ledger.begin_settlement  # type: ignore[union-attr]

    async def record_then_crash(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        raise Crash

    ledger.begin_settlement = record_then_crash  # type: ignore[union-attr,method-assign]
    try:
        with pytest.raises(Crash):
            await pay_directly(server, header)
    finally:
        ledger.begin_settlement = original  # type: ignore[union-attr,method-assign]


async def reconcile_until_settled(server: PaidServer, settled: int) -> None:
    done = 0
    for _ in range(20):  # the first pass re-sends the signed transaction; a later one sees it mined
        done += (await server.wiring.engine.reconcile())["settled"]
        if done == settled:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{done} of {settled} payments settled")


async def test_the_reconciler_settles_from_the_receipt_without_scanning_logs(
    devnet: Devnet, tmp_path: Path
) -> None:
    """The receipt of our own transaction proves the payment: no eth_getLogs over the whole chain, which
    public RPCs refuse."""
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "data") as server:
        await signed_not_broadcast(server, payer)
        for method in server.wiring.engine._methods.values():
            method.settlement.facts._logs = refuse_log_scan  # type: ignore[attr-defined]
        await reconcile_until_settled(server, 1)
    assert len(await transfers_from(devnet, payer.address)) == 1


async def test_one_failing_lookup_does_not_stop_the_reconciler(devnet: Devnet, tmp_path: Path) -> None:
    first, second = await new_payer(devnet, 1_000_000), await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "data") as server:
        await signed_not_broadcast(server, first)
        await signed_not_broadcast(server, second)
        [method] = server.wiring.engine._methods.values()
        original = method.lookup
        asked: list[str] = []

        async def lookup(payment: Any, *args: Any) -> Any:
            asked.append(payment.payer)
            if payment.payer == first.address.lower():
                raise ChainError("node unreachable", code="rpc_unavailable")
            return await original(payment, *args)

        method.lookup = lookup  # type: ignore[method-assign,assignment]
        counts = await server.wiring.engine.reconcile()  # does not raise
        assert sorted(asked) == sorted([first.address.lower(), second.address.lower()])
        assert counts["pending"] >= 1, counts  # the failed lookup
        if counts["settled"] == 0:  # the re-sent transaction lands in the same pass on automine
            await reconcile_until_settled(server, 1)  # the second goes on settling while the first cannot
    assert await transfers_from(devnet, first.address) == []
    assert len(await transfers_from(devnet, second.address)) == 1


async def test_node_down_before_settling_charges_nothing_and_the_same_payment_retries(
    devnet: Devnet, tmp_path: Path
) -> None:
    """The node cannot check the payment (twice: on the first try and on the first retry); each try answers
    502 and frees the payment, so the next retry of the same signed header settles it, once."""
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "data") as server, server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        [method] = server.wiring.engine._methods.values()
        original = method.simulate
        outages = 2

        async def simulate(payment: Any) -> str | None:
            nonlocal outages
            if outages:
                outages -= 1
                raise ChainError("node unreachable", code="rpc_unavailable")
            return await original(payment)

        method.simulate = simulate  # type: ignore[method-assign]
        for _ in range(2):
            down = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
            assert (down.status_code, down.json()["code"]) == (502, "rpc_unavailable"), down.text
            assert await transfers_from(devnet, payer.address) == []
        paid = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        assert paid.status_code == 200, paid.text
        await wait_complete(server, paid.json()["jobId"])
    assert len(await transfers_from(devnet, payer.address)) == 1


async def settler_nonce(server: PaidServer) -> int:
    [method] = server.wiring.engine._methods.values()
    wallet = method.settlement._wallet  # type: ignore[attr-defined]
    return await server.devnet.rpc.get_transaction_count(wallet.address, "latest")


async def stranded_settlement(server: PaidServer, payer: Payer) -> str:
    """A settlement signed and recorded by a process that died before broadcasting it, whose nonce another
    settlement then used (a restarted process, or another API process sharing the settler key): the
    recorded transaction can never land. Its payment id."""
    await signed_not_broadcast(server, payer)  # the dying callback handed the nonce back
    [record] = await server.wiring.engine._need_ledger().settling()
    other = await new_payer(server.devnet, 1_000_000)
    async with server.client() as http:
        paid = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(server.devnet, other, await challenge(http))},
        )
    assert paid.status_code == 200, paid.text
    receipt = await server.devnet.rpc.get_transaction_receipt(record.tx_hash or "")
    assert receipt is None  # the nonce went to the other settlement
    return record.id


async def test_a_settlement_whose_nonce_was_reused_is_settled_with_a_new_transaction(
    devnet: Devnet, tmp_path: Path
) -> None:
    """Reproduces the chaos suite's stuck payment: before, it stayed `settling` until the authorization
    expired (re-sending the dead bytes forever). Chain facts (our nonce used, no receipt, the authorization
    unused) let the reconciler settle it again, once."""
    payer = await new_payer(devnet, 1_000_000)
    overrides = {"payments.settle_timeout_seconds": 0.5}
    async with running_server(devnet, tmp_path / "data", overrides=overrides) as server:
        payment_id = await stranded_settlement(server, payer)
        ledger = server.wiring.engine._need_ledger()
        dead = (await ledger.get_by_id(payment_id)).tx_hash  # type: ignore[union-attr]
        await asyncio.sleep(0.6)  # older than a settlement in flight
        counts = await server.wiring.engine.reconcile()
        assert counts["settled"] == 1, counts
        record = await ledger.get_by_id(payment_id)
        assert record is not None and record.state is PaymentState.SETTLED
        assert record.tx_hash != dead
        [(_, value, tx_hash)] = await transfers_from(devnet, payer.address)
        assert (value, tx_hash) == (67_000, record.tx_hash)
        assert record.job_id is not None
        await wait_complete(server, record.job_id)
        report = await run_audit(server.settings)
    assert report.ok, report.problems


async def test_a_fresh_stranded_settlement_waits(devnet: Devnet, tmp_path: Path) -> None:
    """A settlement that changed within the settle timeout may belong to a live request handling its own
    nonce conflict: the reconciler leaves it to that request."""
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "data") as server:  # 30 s settle timeout
        payment_id = await stranded_settlement(server, payer)
        before = await settler_nonce(server)
        counts = await server.wiring.engine.reconcile()
        assert counts["pending"] == 1 and counts["settled"] == 0, counts
        assert await settler_nonce(server) == before  # nothing signed
        record = await server.wiring.engine._need_ledger().get_by_id(payment_id)
        assert record is not None and record.state is PaymentState.SETTLING
    assert await transfers_from(devnet, payer.address) == []


async def test_two_reconcilers_settle_a_stranded_payment_with_one_transaction(
    devnet: Devnet, tmp_path: Path
) -> None:
    """Two processes' reconcilers find the same stranded settlement: the ledger's compare-and-set lets one
    sign and broadcast; the other stops before broadcasting (no wasted gas, no second transfer attempt)."""
    payer = await new_payer(devnet, 1_000_000)
    overrides = {"payments.settle_timeout_seconds": 0.5}
    async with running_server(devnet, tmp_path / "data", overrides=overrides) as server:
        payment_id = await stranded_settlement(server, payer)
        await asyncio.sleep(0.6)
        before = await settler_nonce(server)
        engine = server.wiring.engine
        first, second = await asyncio.gather(engine.reconcile(), engine.reconcile())
        assert first["settled"] + second["settled"] == 1, (first, second)
        assert await settler_nonce(server) == before + 1  # one transaction
        record = await engine._need_ledger().get_by_id(payment_id)
        assert record is not None and record.state is PaymentState.SETTLED
    assert len(await transfers_from(devnet, payer.address)) == 1


async def test_a_stranded_settlement_through_a_lossy_node_settles_once(
    devnet: Devnet, tmp_path: Path
) -> None:
    """Off the devnet's happy path: the node loses the new transaction too. The reconciler records it before
    broadcasting, re-sends the same bytes on a later pass, and the payer pays once."""
    payer = await new_payer(devnet, 1_000_000)
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        overrides = {
            "payments.settle_timeout_seconds": 0.5,
            "payments.networks": [network_config(devnet.info, rpc_url=proxy.url)],
        }
        async with running_server(devnet, tmp_path / "data", overrides=overrides) as server:
            payment_id = await stranded_settlement(server, payer)
            await asyncio.sleep(0.6)
            proxy.drop_next_sends(1_000)
            counts = await server.wiring.engine.reconcile()
            proxy.drop_next_sends(0)
            assert counts["settled"] == 0, counts
            ledger = server.wiring.engine._need_ledger()
            for _ in range(100):
                await server.wiring.engine.reconcile()
                record = await ledger.get_by_id(payment_id)
                if record is not None and record.state is PaymentState.SETTLED:
                    break
                await asyncio.sleep(0.1)
            assert record is not None and record.state is PaymentState.SETTLED
            report = await run_audit(server.settings)
    assert report.ok, report.problems
    assert len(await transfers_from(devnet, payer.address)) == 1
