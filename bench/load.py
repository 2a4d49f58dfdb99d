"""Scale-out load: 2 API (`studio402 serve`) + W worker (`studio402 worker`) processes on one PostgreSQL
database, paid on a devnet with the official x402 client, generating on a fake fal upstream; and how much
memory one worker process needs to hold many in-flight upstream jobs.

    .venv/bin/python bench/load.py [--payers 16] [--jobs-per-payer 8] [--workers 1,2] [--inflight 10000]

Part 1 (for each W in --workers, in the same run, a fresh database each): every payer pays its jobs one
after the other through the official x402 httpx client (alternating between the two APIs); each job gets a
poller that signs in once (the same client answers the SIGN-IN-WITH-X 402 itself) and then polls
GET /api/jobs/{id} with that header every --poll-every s until the job ends. The fake upstream keeps a job
queued for 1 poll and running for 2, so each job costs the worker a few upstream polls. Figures: paid req/s,
poll p50/p99, jobs completed/s end to end, errors (non-2xx answers other than the sign-in 402), and the
ledger audit (`studio402 ledger audit`'s check) at the end.

Part 2 (--inflight N, 0 to skip): N paid jobs are held by ONE worker process (`--concurrency N`) on an
upstream that never finishes; the worker's RSS is read from /proc once every job is `loading` with its
upstream id saved. One job is paid for real (the template); the others are seeded through the ledger store
(reserve -> begin_settlement -> finish_settlement, enqueued in the same transaction as the API does) with a
fake transaction hash, since paying 10,000 times on the devnet is not what is measured (so no audit there).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from sqlalchemy import Connection, select, text
from x402.http.clients import x402HttpxClient
from x402.http.clients.httpx import x402AsyncTransport

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.devnet_fixture import Payer, new_payer  # noqa: E402
from tests.fakes.fake_server import Outcome, Scenario  # noqa: E402
from tests.fakes.fal import FakeFal  # noqa: E402
from tests.pg_support import PgDatabase  # noqa: E402
from tests.scale.cluster import IMAGE_ROUTE, Cluster, Proc  # noqa: E402

from studio402.chain.devnet import Devnet  # noqa: E402
from studio402.cli.ledger import run_audit  # noqa: E402
from studio402.db.engine import open_database  # noqa: E402
from studio402.db.ledger_store import SqlLedgerStore  # noqa: E402
from studio402.db.schema import jobs  # noqa: E402
from studio402.jobs.queue import enqueue_in  # noqa: E402
from studio402.payments.ledger import NewJob, PaymentKey, PaymentState, new_id  # noqa: E402
from studio402.sdk.client import TERMINAL, x402_client  # noqa: E402

PRICE_MICROS = 200_000  # more than the image route costs
SIWX = "sign-in-with-x"
RSS_TARGET_MB = 512
PLATEAU_SECONDS = 90  # held jobs not growing this long: the worker is saturated, report where it stands
# One worker holding thousands of jobs: heartbeats and stall checks at production pace, not the tests'
# seconds (a 3 s lease would mean thousands of lease writes a second), and a provider timeout that covers
# waiting for one of httpx's 100 pooled connections while thousands of polls are due at once.
INFLIGHT_JOBS = {
    "lease_seconds": 300.0,
    "queue_heartbeat_seconds": 10.0,
    "queue_stalled_seconds": 900.0,
    "queue_sweep_seconds": 30,
    "queue_poll_seconds": 1.0,
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (as bench/paid_request.py reads it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


async def job_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, upstream_id IS NOT NULL AS sent, count(*) AS n FROM jobs GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + r["n"]
        if r["sent"]:
            counts[r["status"] + "+upstream"] = counts.get(r["status"] + "+upstream", 0) + r["n"]
    return counts


def write_cluster(
    root: Path,
    devnet: Devnet,
    pg: PgDatabase,
    fal: FakeFal,
    provider_timeout: float,
    db_pool: int | None = None,
    **jobs_: Any,
) -> Cluster:
    """The tests' cluster config, with a longer provider timeout and (for one worker alone) a larger
    database pool than the tests' (sized for four processes sharing the server's connections)."""
    cluster = Cluster.write(root, devnet, pg.url, fal.base_url, **jobs_)
    text = cluster.config.read_text().replace(
        "timeout_seconds = 10.0", f"timeout_seconds = {provider_timeout}"
    )
    if db_pool is not None:
        text = re.sub(r"(?m)^pool_size = \d+$", f"pool_size = {db_pool}", text)
        text = re.sub(r"(?m)^max_overflow = \d+$", f"max_overflow = {db_pool}", text)
    cluster.config.write_text(text)
    return cluster


class SiwxRecorder(httpx.AsyncBaseTransport):
    """The network under the official client's transport: keeps the SIGN-IN-WITH-X header it sent per URL
    (its retry goes straight to this transport, so the response's request does not show it)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if SIWX in request.headers:
            self.sent[request.url.path] = request.headers[SIWX]
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclasses.dataclass
class Tally:
    paid: int = 0
    pay_errors: int = 0
    poll_errors: int = 0
    resets: int = 0  # polls lost to a connection reset (not an answer: retried, not counted as errors)
    polls: list[float] = dataclasses.field(default_factory=list)  # seconds per plain poll
    last_paid: float = 0.0
    last_ended: float = 0.0
    ended: dict[str, int] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)


async def poll_job(
    http: httpx.AsyncClient,
    recorder: SiwxRecorder,
    plain: aiohttp.ClientSession,
    base: str,
    job_id: str,
    every: float,
    tally: Tally,
) -> None:
    """Sign in once (the official client answers the 402), then poll with that header until the end."""
    first = await http.get(f"/api/jobs/{job_id}")
    if first.status_code != 200:
        tally.poll_errors += 1
        tally.errors.append(f"sign-in poll {first.status_code} {first.text[:200]}")
        return
    header = recorder.sent[first.request.url.path]
    status = first.json()["status"]
    url = f"{base}/api/jobs/{job_id}"
    while status not in TERMINAL:
        await asyncio.sleep(every)
        start = time.perf_counter()
        try:
            async with plain.get(url, headers={SIWX: header}) as r:
                body = await r.json(content_type=None)
        except aiohttp.ClientOSError as exc:  # a kept-alive connection the server closed meanwhile
            tally.resets += 1
            tally.errors.append(f"poll transport: {exc}")
            continue
        tally.polls.append(time.perf_counter() - start)
        if r.status != 200:
            tally.poll_errors += 1
            tally.errors.append(f"poll {r.status} {str(body)[:200]}")
            continue
        status = body["status"]
    tally.ended[status] = tally.ended.get(status, 0) + 1
    tally.last_ended = time.perf_counter()


async def payer_loop(
    index: int,
    payer: Payer,
    bases: list[str],
    count: int,
    every: float,
    plain: aiohttp.ClientSession,
    tally: Tally,
) -> None:
    base = bases[index % len(bases)]
    pollers: list[asyncio.Task[None]] = []
    recorder = SiwxRecorder()
    transport = x402AsyncTransport(x402_client(payer.key), transport=recorder)
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=120) as http:
        for i in range(count):
            answer = await http.post(IMAGE_ROUTE, json={"prompt": f"load {index}-{i}"})
            if answer.status_code != 200:
                tally.pay_errors += 1
                tally.errors.append(f"pay {answer.status_code} {answer.text[:200]}")
                continue
            tally.paid += 1
            tally.last_paid = time.perf_counter()
            job_id = answer.json()["jobId"]
            pollers.append(asyncio.create_task(poll_job(http, recorder, plain, base, job_id, every, tally)))
        await asyncio.gather(*pollers)


async def load_run(
    tmp: Path, devnet: Devnet, fal: FakeFal, workers: int, payers: int, per_payer: int, every: float
) -> dict[str, Any]:
    pg = PgDatabase.create()
    cluster = write_cluster(tmp / f"load-w{workers}", devnet, pg, fal, 30.0)
    try:
        funded = list(
            await asyncio.gather(*(new_payer(devnet, PRICE_MICROS * per_payer) for _ in range(payers)))
        )
        apis = [await cluster.start_api(0), await cluster.start_api(1)]
        for i in range(workers):
            cluster.start_worker(i, 64)
        bases = [api.url or "" for api in apis]
        tally = Tally()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as plain:
            start = time.perf_counter()
            await asyncio.wait_for(
                asyncio.gather(
                    *(payer_loop(i, p, bases, per_payer, every, plain, tally) for i, p in enumerate(funded))
                ),
                timeout=600,
            )
        total = payers * per_payer
        audit = await run_audit(cluster.settings())
        dead = [f"{p.role}-{p.index}" for p in cluster.procs if not p.alive]
        return {
            "workers": workers,
            "paid_per_s": tally.paid / (tally.last_paid - start),
            "jobs_per_s": tally.ended.get("complete", 0) / (tally.last_ended - start),
            "poll_p50_ms": pct(tally.polls, 0.5) * 1000,
            "poll_p99_ms": pct(tally.polls, 0.99) * 1000,
            "polls": len(tally.polls),
            "errors": tally.pay_errors + tally.poll_errors,
            "resets": tally.resets,
            "ended": tally.ended,
            "total": total,
            "audit_ok": audit.ok,
            "dead": dead,
            "first_errors": tally.errors[:3],
            "upstream_submissions": len(fal.tasks),
        }
    finally:
        cluster.stop_all()
        pg.drop()


async def template_job(cluster: Cluster, devnet: Devnet) -> str:
    """Pay one job for real (the template of the seeded ones); its id."""
    api = await cluster.start_api(0)
    payer = await new_payer(devnet, PRICE_MICROS)
    async with x402HttpxClient(x402_client(payer.key), base_url=api.url or "", timeout=60) as http:
        answer = await http.post(IMAGE_ROUTE, json={"prompt": "in flight"})
    if answer.status_code != 200:
        raise RuntimeError(f"template payment: {answer.status_code} {answer.text[:300]}")
    cluster.stop_all()  # the API is not needed any more; the worker starts after seeding
    cluster.procs.clear()
    job_id: str = answer.json()["jobId"]
    return job_id


async def seed(db_url: str, template_id: str, count: int) -> float:
    """`count` more settled, enqueued jobs like the template, through the ledger store; seconds taken."""
    db = await open_database(db_url)
    ledger = SqlLedgerStore(db, on_runnable=enqueue_in)
    try:
        row = await db.read(lambda conn: conn.execute(select(jobs).where(jobs.c.id == template_id)).one())
        payment = await ledger.get_by_id(row.payment_id)
        assert payment is not None
        gate = asyncio.Semaphore(8)  # the store's pool holds 10 connections

        async def one(i: int) -> None:
            now = time.time()
            job = NewJob(
                id=new_id("job"),
                payer=row.payer,
                model=row.model,
                operation=row.operation,
                request=row.request,
                fingerprint=row.fingerprint,
                micros=row.micros,
            )
            record = dataclasses.replace(
                payment,
                id=new_id("pay"),
                key=PaymentKey(payment.key.network, payment.key.payer, "0x" + secrets.token_hex(32)),
                state=PaymentState.RESERVED,
                created_at=now,
                updated_at=now,
                tx_hash=None,
                job_id=None,
                client_id=None,
            )
            fake_tx = "0x" + secrets.token_hex(32)
            async with gate:
                assert await ledger.reserve(record)
                await ledger.begin_settlement(record.id, fake_tx, None, job, now)
                await ledger.finish_settlement(record.id, fake_tx, now)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))

        def analyze(conn: Connection) -> None:
            # What autovacuum does after a bulk load (it is off on the bench machine's PostgreSQL): with
            # planner statistics from an empty table, procrastinate's fetch sorts every waiting entry
            # and takes ~2 s at 10,000 of them, so a worker would start ~0.5 jobs/s.
            conn.execute(text("ANALYZE procrastinate_jobs"))
            conn.execute(text("ANALYZE jobs"))

        await db.write(analyze)
        return time.perf_counter() - start
    finally:
        await db.dispose()


async def inflight_run(tmp: Path, devnet: Devnet, count: int, timeout: float) -> dict[str, Any]:
    fal = FakeFal(Scenario(outcome=Outcome.NEVER, media="image", size=(1024, 1024), queued_polls=1))
    pg = PgDatabase.create()
    async with fal.running():
        cluster = write_cluster(tmp / "inflight", devnet, pg, fal, 120.0, 20, **INFLIGHT_JOBS)
        try:
            template = await template_job(cluster, devnet)
            seeded_in = await seed(pg.url, template, count - 1)
            print(f"  seeded {count - 1} jobs in {seeded_in:.0f} s (+1 paid for real)", flush=True)
            worker: Proc = cluster.start_worker(0, count)
            pid = worker.popen.pid
            start = time.perf_counter()
            counts: dict[str, int] = {}
            first: tuple[int, float] | None = None  # (held, RSS) at the first sample: the worker loaded
            best, best_at, cpu0, last = 0, start, cpu_seconds(pid), start
            while time.perf_counter() - start < timeout:
                await asyncio.sleep(5)
                if not worker.alive:
                    raise RuntimeError(f"worker died:\n{worker.log.read_text()[-3000:]}")
                counts = await job_counts(pg.dsn)
                held = counts.get("loading+upstream", 0)
                now, cpu = time.perf_counter(), cpu_seconds(pid)
                first = first or (held, rss_mb(pid))
                print(
                    f"  {now - start:5.0f} s: {held} loading with an upstream id, RSS {rss_mb(pid):.0f} MB, "
                    f"worker CPU {(cpu - cpu0) / (now - last):.0%}",
                    flush=True,
                )
                cpu0, last = cpu, now
                if held > best:
                    best, best_at = held, now
                if held >= count or now - best_at > PLATEAU_SECONDS:
                    break
            ramp = time.perf_counter() - start
            at_full = rss_mb(pid)
            await asyncio.sleep(30)  # a while of steady polling at that load
            counts = await job_counts(pg.dsn)
            held = counts.get("loading+upstream", 0)
            return {
                "count": count,
                "held": held,
                "ramp_s": ramp,
                "rss_at_full_mb": at_full,
                "rss_after_30s_mb": rss_mb(pid),
                "peak_mb": rss_mb(pid, "VmHWM"),
                "first_sample": first,
                "kb_per_job": (at_full - first[1]) * 1024 / max(1, best - first[0]) if first else 0.0,
                "counts": counts,
                "submissions": len(fal.tasks),
                "upstream_polls": sum(t.polls for t in fal.tasks.values()),
                "seeded_s": seeded_in,
            }
        finally:
            cluster.stop_all()
            pg.drop()


async def main(
    payers: int, per_payer: int, levels: list[int], every: float, inflight: int, timeout: float
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    devnet = Devnet(tmp / "chain", checkpoint_interval=3600)
    await devnet.start()
    try:
        rows = []
        for w in levels:
            fal = FakeFal(Scenario(media="image", size=(1024, 1024), queued_polls=1, running_polls=2))
            async with fal.running():
                row = await load_run(tmp, devnet, fal, w, payers, per_payer, every)
            rows.append(row)
            print(f"  W={w}: {row}", flush=True)
        if rows:
            print(f"\n2 API processes, {payers} payers x {per_payer} jobs, polls every {every} s")
            print("workers | paid req/s | jobs done/s | poll p50 ms | poll p99 ms | errors | resets | audit")
            for r in rows:
                print(
                    f"{r['workers']:7d} | {r['paid_per_s']:10.1f} | {r['jobs_per_s']:11.1f} | "
                    f"{r['poll_p50_ms']:11.1f} | {r['poll_p99_ms']:11.1f} | "
                    f"{r['errors']:6d} | {r['resets']:6d} | "
                    f"{'ok' if r['audit_ok'] else 'FAILED'} ({r['ended']} of {r['total']})"
                )
            if len(rows) > 1:
                base = rows[0]
                for r in rows[1:]:
                    paid = r["paid_per_s"] / base["paid_per_s"]
                    done = r["jobs_per_s"] / base["jobs_per_s"]
                    print(
                        f"W={r['workers']} / W={base['workers']}: "
                        f"paid req/s {paid:.2f}x, jobs done/s {done:.2f}x"
                    )
        if inflight:
            print(f"\n{inflight} in-flight jobs on one worker (--concurrency {inflight})", flush=True)
            result = await inflight_run(tmp, devnet, inflight, timeout)
            verdict = "under" if result["rss_at_full_mb"] < RSS_TARGET_MB else "OVER"
            reached = "all" if result["held"] >= inflight else "PLATEAU (the worker saturated)"
            print(
                f"held {result['held']} of {result['count']} ({reached}) after {result['ramp_s']:.0f} s: "
                f"worker RSS {result['rss_at_full_mb']:.0f} MB ({verdict} the {RSS_TARGET_MB} MB target), "
                f"{result['rss_after_30s_mb']:.0f} MB 30 s later, peak {result['peak_mb']:.0f} MB; "
                f"~{result['kb_per_job']:.0f} KB per held job after the first sample; "
                f"{result['submissions']} upstream submissions, {result['upstream_polls']} upstream polls"
            )
    finally:
        await devnet.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payers", type=int, default=16)
    parser.add_argument("--jobs-per-payer", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker process counts to compare ('' to skip)")
    parser.add_argument("--poll-every", type=float, default=0.5, help="seconds between a poller's polls")
    parser.add_argument("--inflight", type=int, default=10_000, help="jobs held by one worker (0 to skip)")
    parser.add_argument("--inflight-timeout", type=float, default=1200.0)
    cli = parser.parse_args()
    levels = [int(w) for w in cli.workers.split(",") if w]
    asyncio.run(
        main(cli.payers, cli.jobs_per_payer, levels, cli.poll_every, cli.inflight, cli.inflight_timeout)
    )
