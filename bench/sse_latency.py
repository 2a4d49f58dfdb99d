"""How fast a job's status change reaches a client of GET /api/jobs/{id}/events (server-sent events).

    .venv/bin/python bench/sse_latency.py [--jobs 30]

A real server (uvicorn, the real event path) runs jobs on a backend the bench releases at a known instant;
the client, subscribed with a SIGN-IN-WITH-X header, timestamps each event. Reported: milliseconds from the
change to its arrival, for pending -> loading (a worker claims the job) and loading -> complete."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from tests.fakes.scripted import ScriptedBackend, only  # noqa: E402
from tests.paid_support import devnet_settings  # noqa: E402
from tests.server import free_port, serve  # noqa: E402
from tests.siwx_support import sign_in  # noqa: E402

from studio402.api.app import create_app  # noqa: E402
from studio402.catalog import CATALOG  # noqa: E402
from studio402.chain.devnet import Devnet  # noqa: E402
from studio402.db.ledger_store import job_row  # noqa: E402
from studio402.db.schema import jobs  # noqa: E402
from studio402.payments.ledger import NewJob, new_id  # noqa: E402
from studio402.wiring import Wiring  # noqa: E402


async def one_job(wiring: Wiring, base: str, account: Any, backend: ScriptedBackend) -> tuple[float, float]:
    route = CATALOG.get("grok", "generate")
    request = CATALOG.validate(route, {"prompt": new_id("p")})
    job = NewJob(
        new_id("job"),
        account.address.lower(),
        route.model,
        route.operation,
        request.canonical_json,
        request.fingerprint,
        0,
    )
    row = job_row(job, held=True, payment_id=None, now=time.time())  # held: not runnable until we say so
    await wiring.jobs.db.write(lambda conn: conn.execute(insert(jobs).values(row)))
    backend.gate = asyncio.Event()
    path = f"/api/jobs/{job.id}/events"
    header = sign_in(account, base, path, wiring.siwx.chain_ids[0])
    seen: dict[str, float] = {}
    marks: dict[str, float] = {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + path, headers={"SIGN-IN-WITH-X": header}) as r,
    ):
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            status = json.loads(line[6:])["status"]
            seen.setdefault(status, time.perf_counter())
            if status == "pending" and "release" not in marks:
                marks["release"] = time.perf_counter()
                await wiring.jobs.db.write(
                    lambda conn: conn.execute(jobs.update().where(jobs.c.id == job.id).values(held=False))
                )
                wiring.dispatcher.wake()
            elif status == "loading" and "finish" not in marks:
                marks["finish"] = time.perf_counter()
                backend.gate.set()
    return (seen["loading"] - marks["release"]) * 1000, (seen["complete"] - marks["finish"]) * 1000


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    devnet = Devnet(tmp / "chain", checkpoint_interval=3600)
    await devnet.start()
    port = free_port()
    backend = ScriptedBackend("gated")
    wiring = Wiring(
        devnet_settings(devnet, tmp / "data", port, **{"jobs.workers": 1}),
        registry=only(backend),
    )
    account = Account.create()
    try:
        async with serve(create_app(wiring), port) as base:
            results = [await one_job(wiring, base, account, backend) for _ in range(n)]
    finally:
        await devnet.stop()
    for label, values in (
        ("pending -> loading", [r[0] for r in results]),
        ("loading -> complete", [r[1] for r in results]),
    ):
        ordered = sorted(values)
        print(
            f"{label:20s} median {statistics.median(ordered):6.1f} ms   "
            f"p95 {ordered[int(len(ordered) * 0.95) - 1]:6.1f} ms"
            f"   max {ordered[-1]:6.1f} ms   ({len(ordered)} jobs)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    asyncio.run(main(parser.parse_args().jobs))
