"""Job polls per second with SIGN-IN-WITH-X vs bare endpoints of the same stack, in one run.

    .venv/bin/python bench/poll.py [--seconds 4] [--concurrency 32]

Rows: GET /api/health (bare), the job route without authentication (bench-only route: what SIWX costs),
and the real GET /api/jobs/{id} with a SIGN-IN-WITH-X header signed by the payer. Also the per-check CPU
of our verifier against the official SDK's own SIWX check (parse + validate + verify) on the same header."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eth_account import Account  # noqa: E402
from tests.auth.conftest import answer_challenge  # noqa: E402
from tests.devnet_fixture import new_payer  # noqa: E402
from tests.server import free_port  # noqa: E402
from x402.extensions.sign_in_with_x import parse_siwx_header, validate_siwx_message, verify_siwx_signature  # noqa: E402
from x402.http.clients import x402HttpxClient  # noqa: E402

from paid_request import spawn_studio, wait_up  # noqa: E402
from studio402.auth.siwx import SiwxVerifier  # noqa: E402
from studio402.chain.devnet import Devnet  # noqa: E402
from studio402.sdk.client import x402_client  # noqa: E402


async def hammer(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    stop = time.perf_counter() + seconds
    done = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with http.get(url, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status}")
            done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def verifier_cpu(
    header: str, url: str, base: str, chain_id: int, n: int = 300
) -> tuple[float, float, float]:
    """CPU per check: ours cold (no cache), ours on a header seen before, the SDK's."""
    cold_verifier = SiwxVerifier(base, supported_chain_ids=[chain_id], cache_size=0)
    warm_verifier = SiwxVerifier(base, supported_chain_ids=[chain_id])
    results = []
    for verifier in (cold_verifier, warm_verifier):
        t = time.process_time()
        for _ in range(n):
            await verifier.verify(header, request_url=url)
        results.append((time.process_time() - t) / n * 1000)
    sdk_n = max(20, n // 15)
    t = time.process_time()
    for _ in range(sdk_n):
        payload = parse_siwx_header(header)
        await validate_siwx_message(payload, url)
        await verify_siwx_signature(payload)
    return results[0], results[1], (time.process_time() - t) / sdk_n * 1000


async def main(seconds: float, concurrency: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    devnet = Devnet(tmp / "chain", checkpoint_interval=3600)
    info = await devnet.start()
    port = free_port()
    proc = spawn_studio(info, tmp / "studio", port, "--workers", "1")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base)
        payer = await new_payer(devnet, 1_000_000)
        async with x402HttpxClient(x402_client(payer.key), base_url=base, timeout=60) as http:
            job_id = (await http.post("/api/generate/grok/generate", json={"prompt": "poll me"})).json()[
                "jobId"
            ]
        url = f"{base}/api/jobs/{job_id}"
        verifier = SiwxVerifier(base, supported_chain_ids=[info.chain_id])
        header = await answer_challenge(verifier, url, Account.from_key(payer.key))
        rows = [
            ("GET /api/health (bare)", f"{base}/api/health", {}),
            ("job route without auth", f"{base}/bench/job/{job_id}?payer={payer.address}", {}),
            ("GET /api/jobs/{id} + SIWX", url, {"SIGN-IN-WITH-X": header}),
        ]
        rates = {}
        for label, target, headers in rows:
            await hammer(target, headers, 0.5, concurrency)  # warm up
            rates[label] = await hammer(target, headers, seconds, concurrency)
        bare, unauth, siwx = rates.values()
        for label, rate in rates.items():
            print(f"{label:32s} {rate:8.0f} req/s")
        print(
            f"SIWX poll / bare endpoint: {siwx / bare:.0%}   "
            f"SIWX poll / same route without auth: {siwx / unauth:.0%}"
        )
        cold, warm, sdk = await verifier_cpu(header, url, base, info.chain_id)
        print(
            f"SIWX check CPU: ours {cold:.3f} ms (header seen before: {warm:.3f} ms), "
            f"x402 SDK {sdk:.1f} ms ({sdk / cold:.0f}x)"
        )
    finally:
        proc.terminate()
        proc.wait(10)
        await devnet.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    cli = parser.parse_args()
    asyncio.run(main(cli.seconds, cli.concurrency))
