"""Chaos: API and worker processes SIGKILL themselves at each step of the money path (failpoints: after the
reservation, after the broadcast, after the job insert, mid upstream poll, mid result copy) while paid
traffic flows; a supervisor restarts them. At the end: 0 payments lost, 0 jobs lost, 0 upstream
submissions doubled, the audit balanced.

Runnable alone: `pytest tests/chaos` (CHAOS_KILLS sets the number of kills, default 50)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from studio402.chain.devnet import Devnet
from studio402.cli.ledger import run_audit
from tests.devnet_fixture import Payer, new_payer
from tests.fakes.fake_server import Scenario
from tests.fakes.fal import FakeFal
from tests.paid_support import decode_header, payment_header, transfers_from
from tests.pg_support import PgDatabase
from tests.scale.cluster import IMAGE_ROUTE, Cluster, Proc, running

KILLS = int(os.environ.get("CHAOS_KILLS", "50"))
API_POINTS = "after_reserve=0.05,after_broadcast=0.1,after_job_insert=0.1"
WORKER_POINTS = "mid_upstream_poll=0.06,mid_result_copy=0.15"
ALL_POINTS = {"after_reserve", "after_broadcast", "after_job_insert", "mid_upstream_poll", "mid_result_copy"}
PRICE_MICROS = 200_000
IN_FLIGHT = 10  # payers at once, each paying again as soon as it is answered


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal(Scenario(media="image", size=(512, 512), queued_polls=1, running_polls=2))
    async with fake.running():
        yield fake


@dataclass
class Supervisor:
    """Restarts every process that died; armed (failpoints on) until the kill budget is spent."""

    cluster: Cluster
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    armed: bool = True
    error: BaseException | None = None  # why watching stopped: the payers stop with it, not hang

    @property
    def kills(self) -> int:
        return len(self.cluster.kills)

    def api_urls(self) -> list[str]:
        if self.error is not None:
            raise AssertionError("the supervisor stopped") from self.error
        return [p.url for p in self.apis if p.alive and p.url]

    async def watch(self) -> None:
        try:
            await self._restart_the_dead()
        except BaseException as exc:
            self.error = exc
            raise

    async def _restart_the_dead(self) -> None:
        # Restarts do not wait for health: a process may die by a failpoint while it starts (its start-up
        # reconciler settles or refunds), and is then restarted on the next round like any other.
        while True:
            for i, proc in enumerate(self.apis):
                if not proc.alive:
                    self._record(proc)
                    armed = self.armed and self._budget()
                    self.apis[i] = await self.cluster.start_api(i, armed=armed, wait=False)
            for i, proc in enumerate(self.workers):
                if not proc.alive:
                    self._record(proc)
                    self.workers[i] = self.cluster.start_worker(i, 8, armed=self.armed and self._budget())
            await asyncio.sleep(0.1)

    def _budget(self) -> bool:
        return self.kills < KILLS

    def _record(self, proc: Proc) -> None:
        point = self.cluster.died_by_failpoint(proc)
        assert point is not None, f"{proc.role} {proc.index} died on its own:\n{proc.log.read_text()[-3000:]}"
        self.cluster.kills.append((f"{proc.role}-{proc.index}", point))


@dataclass
class Outcome:
    payer: Payer
    job_id: str | None = None
    answers: Counter[int] = field(default_factory=Counter)


async def pay_until_answered(sup: Supervisor, payer: Payer, devnet: Devnet, index: int) -> Outcome:
    """One signed payment, re-sent (the same bytes) to whichever API is up until it is answered: a client
    that never pays twice. Connection errors, 5xx and 409 (in progress) are retried."""
    outcome = Outcome(payer)
    body = {"prompt": f"chaos {index}"}
    header: str | None = None
    for _ in range(600):
        urls = sup.api_urls()
        if not urls:
            await asyncio.sleep(0.2)
            continue
        async with httpx.AsyncClient(base_url=random.choice(urls), timeout=30) as client:
            try:
                if header is None:
                    first = await client.post(IMAGE_ROUTE, json=body)
                    assert first.status_code == 402, first.text
                    accepted = decode_header(first.headers["PAYMENT-REQUIRED"])["accepts"][0]
                    header = payment_header(devnet, payer, accepted)
                answer = await client.post(IMAGE_ROUTE, json=body, headers={"PAYMENT-SIGNATURE": header})
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
        outcome.answers[answer.status_code] += 1
        if answer.status_code in (200, 202):
            outcome.job_id = answer.json()["jobId"]
            return outcome
        assert answer.status_code in (409, 500, 502, 503), answer.text
        await asyncio.sleep(0.3)
    return outcome


async def job_rows(dsn: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT j.id, j.payer, j.status, j.held, j.error_code, j.lease_owner, j.lease_expires,"
            " j.upstream_id, j.refund, j.attempts, p.state AS payment, p.reason"
            " FROM jobs j LEFT JOIN payments p ON p.id = j.payment_id"
        )
        return {r["id"]: dict(r) for r in rows}
    finally:
        await conn.close()


def _settled_down(row: dict[str, Any]) -> bool:
    """Ended, and refunded if it failed."""
    if row["status"] == "failed":
        return bool(json.loads(row["refund"] or "{}").get("status") == "done")
    return row["status"] in ("complete", "canceled")


def _brief(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("status", "error_code", "attempts", "payment", "reason", "refund", "held", "upstream_id")
    return tuple(row.get(k) for k in keys)


async def wait_terminal(dsn: str, timeout: float) -> dict[str, dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await job_rows(dsn)
        if all(_settled_down(r) for r in rows.values()):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.5)


@pytest.mark.timeout(900)
async def test_kills_at_every_step_lose_nothing(
    devnet: Devnet, pg: PgDatabase, fal: FakeFal, tmp_path: Path
) -> None:
    cluster = Cluster.write(
        tmp_path / "cluster",
        devnet,
        pg.url,
        fal.base_url,
        payments={"settle_timeout_seconds": 3.0, "reconcile_every_seconds": 1.0},
    )
    cluster.failpoints.update(api=API_POINTS, worker=WORKER_POINTS)
    outcomes: list[Outcome] = []
    async with running(cluster):
        sup = Supervisor(cluster)
        sup.apis = [await cluster.start_api(0), await cluster.start_api(1)]
        sup.workers = [cluster.start_worker(0, 8), cluster.start_worker(1, 8)]
        watcher = asyncio.create_task(sup.watch())
        try:
            counter = iter(range(1_000_000))

            async def payer_loop() -> None:
                while sup.kills < KILLS:
                    payer = await new_payer(devnet, PRICE_MICROS)
                    outcomes.append(await pay_until_answered(sup, payer, devnet, next(counter)))

            await asyncio.gather(*(payer_loop() for _ in range(IN_FLIGHT)))
            sup.armed = False  # let everything finish
            rows = await wait_terminal(pg.dsn, timeout=180)
        finally:
            watcher.cancel()
    points = Counter(point for _, point in cluster.kills)
    assert sup.kills >= KILLS, points
    assert set(points) >= ALL_POINTS, points
    # 0 jobs lost: every job ended; every answered payer has its job, complete.
    # Media or a refund: a job may end failed (e.g. it gave up after too many interrupted runs), then it
    # must be refunded.
    ended = Counter(r["status"] for r in rows.values())
    odd = [_brief(r) for r in rows.values() if r["status"] != "complete"]
    assert set(ended) <= {"complete", "failed"}, (ended, odd)
    failed = [r for r in rows.values() if r["status"] == "failed"]
    for row in failed:
        refund = json.loads(row["refund"] or "null")
        assert refund is not None and refund.get("status") == "done", _brief(row)
    assert ended["complete"] >= len(rows) // 2, (ended, [_brief(r) for r in failed])
    for outcome in outcomes:
        assert outcome.job_id is not None, outcome
        assert outcome.job_id in rows
    # 0 payments lost, none taken twice: one transfer per payer, one job per payer.
    for outcome in outcomes:
        assert len(await transfers_from(devnet, outcome.payer.address)) == 1, outcome
    assert len(rows) == len(outcomes)
    # 0 upstream submissions doubled.
    submitted = Counter(str(task.body.get("prompt")) for task in fal.tasks.values())
    assert max(submitted.values()) == 1, [p for p, n in submitted.items() if n > 1]
    report = await run_audit(cluster.settings())
    assert report.ok, report
