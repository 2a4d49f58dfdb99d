"""Two API processes and two workers on one PostgreSQL database complete every paid job exactly once while
a worker is SIGKILLed mid-run (the scale-out "done when")."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from studio402.chain.devnet import Devnet
from studio402.cli.ledger import run_audit
from tests.devnet_fixture import new_payer
from tests.fakes.fake_server import Scenario
from tests.fakes.fal import FakeFal
from tests.paid_support import transfers_from
from tests.pg_support import PgDatabase
from tests.scale.cluster import Cluster, pay, running

PRICE_MICROS = 200_000  # more than any image route costs


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal(Scenario(media="image", size=(1024, 1024), queued_polls=1, running_polls=4))
    async with fake.running():
        yield fake


async def statuses(dsn: str) -> Counter[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return Counter(
            {
                r["status"]: r["n"]
                for r in await conn.fetch("SELECT status, count(*) AS n FROM jobs GROUP BY status")
            }
        )
    finally:
        await conn.close()


async def wait_all_ended(dsn: str, total: int, timeout: float) -> Counter[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        counts = await statuses(dsn)
        ended = counts["complete"] + counts["failed"] + counts["canceled"]
        if ended >= total or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.3)


def submissions_per_prompt(fake: FakeFal) -> Counter[str]:
    return Counter(str(task.body.get("prompt")) for task in fake.tasks.values())


async def test_two_apis_two_workers_one_killed_mid_poll(
    devnet: Devnet, pg: PgDatabase, fal: FakeFal, tmp_path: Path
) -> None:
    cluster = Cluster.write(tmp_path / "cluster", devnet, pg.url, fal.base_url)
    cluster.failpoints["worker"] = "mid_upstream_poll=0.2"  # both die at some upstream poll, once
    total = 12
    payers = [await new_payer(devnet, PRICE_MICROS) for _ in range(total)]
    async with running(cluster):
        apis = [await cluster.start_api(0), await cluster.start_api(1)]
        workers = [cluster.start_worker(0, 8), cluster.start_worker(1, 8)]
        answers = await asyncio.gather(
            *(pay(apis[i % 2].url or "", payer.key, {"prompt": f"job {i}"}) for i, payer in enumerate(payers))
        )
        assert [a.status_code for a in answers] == [200] * total, [a.text for a in answers]
        deadline = asyncio.get_running_loop().time() + 120
        counts = await statuses(pg.dsn)
        while counts["complete"] < total and asyncio.get_running_loop().time() < deadline:
            for i, worker in enumerate(workers):
                if not worker.alive:  # a supervisor restarts what died
                    point = cluster.died_by_failpoint(worker)
                    cluster.kills.append((f"worker-{i}", point or f"exit {worker.popen.returncode}"))
                    workers[i] = cluster.start_worker(i, 8, armed=False)
            await asyncio.sleep(0.2)
            counts = await statuses(pg.dsn)
    assert counts == Counter({"complete": total}), (counts, cluster.kills)
    assert any(point == "mid_upstream_poll" for _, point in cluster.kills), cluster.kills
    assert submissions_per_prompt(fal) == Counter({f"job {i}": 1 for i in range(total)})
    for payer in payers:
        assert len(await transfers_from(devnet, payer.address)) == 1
    report = await run_audit(cluster.settings())
    assert report.ok, report
