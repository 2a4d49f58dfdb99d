"""Paid requests per second: studio402 vs the official x402 SDK's FastAPI middleware + in-process facilitator,
both settling on the same anvil in one run (challenge -> verify -> settle -> job row).

    .venv/bin/python bench/paid_request.py [--requests 200] [--concurrency 1,16,64] [--block-time 1]
        [--rail evm|tempo|solana]

`--rail tempo|solana` pays studio402 on that rail instead (MPP with pympp / x402 SVM with ExactSvmScheme, on
the devnet studio402 starts in its data dir; see bench/_rails.py); the reference exists only for x402 on
EVM, so its figure is printed beside ours as the same-machine yardstick.

Payment headers are signed before the clock starts (client signing is not server work); each server gets
its own payers. Every answer must be a 200 with a distinct job, and every payment one on-chain transfer.
`--block-time N` runs the chain with a block every N s instead of automine, as a real chain does: what
counts there is how many settlements a server keeps in flight per block."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.devnet_fixture import Payer, new_payer  # noqa: E402
from tests.paid_support import challenge, network_config, payment_header  # noqa: E402
from tests.server import free_port  # noqa: E402

from _rails import PRICE, TEMPO_FEE_ALLOWANCE, fire_tempo, solana_headers, tempo_payers  # noqa: E402
from studio402.chain.devnet import Devnet, DevnetInfo  # noqa: E402
from studio402.chain.tempo_devnet import TempoDevnet  # noqa: E402
from studio402.solana import process as solana_process  # noqa: E402

BODY = {"prompt": "bench"}
PATH = "/api/generate/grok/generate"  # flat $0.07


async def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                await http.post(url + PATH, json=BODY)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def headers_for(devnet: Devnet, base: str, payers: list[Payer], n: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as http:
        accepted = await challenge(http, PATH, BODY)
    return [payment_header(devnet, payers[i % len(payers)], accepted) for i in range(n)]


async def fire(base: str, headers: list[str], concurrency: int, timeout: float) -> tuple[float, set[str]]:
    """Send every payment with `concurrency` requests in flight (aiohttp: a light client leaves the two
    cores to the servers and anvil)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for h in headers:
        queue.put_nowait(h)
    jobs: set[str] = set()
    body = json.dumps(BODY)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            header = queue.get_nowait()
            async with http.post(
                base + PATH,
                data=body,
                headers={"PAYMENT-SIGNATURE": header, "content-type": "application/json"},
            ) as r:
                text = await r.text()
            if r.status != 200:
                raise RuntimeError(f"{base}: {r.status} {text[:300]}")
            jobs.add(json.loads(text)["jobId"])

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return elapsed, jobs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report server CPU per paid request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT)


def spawn_studio(info: DevnetInfo, data_dir: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """bench/_studio_server.py settling on the bench's devnet (no refund key), with further `args`."""
    network = network_config(info, refund_key=None)
    return spawn(
        [
            "bench/_studio_server.py",
            "--network-json",
            json.dumps(network),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            *args,
        ]
    )


async def measure_ours(
    rail: str,
    devnet: Devnet,
    data_dir: Path,
    tempo: TempoDevnet | None,
    base: str,
    requests: int,
    concurrency: int,
    timeout: float,
) -> tuple[float, set[str]]:
    """One timed run of studio402 paid on `rail`."""
    if rail == "solana":
        return await fire(
            base, await solana_headers(data_dir, base, PATH, BODY, requests), concurrency, timeout
        )
    if rail == "tempo":
        assert tempo is not None
        keys = await tempo_payers(tempo, concurrency, requests * (PRICE + TEMPO_FEE_ALLOWANCE))
        return await fire_tempo(base, PATH, BODY, keys, tempo.info.rpc_url, requests, timeout)
    payers = list(await asyncio.gather(*(new_payer(devnet, requests * PRICE) for _ in range(4))))
    return await fire(base, await headers_for(devnet, base, payers, requests), concurrency, timeout)


async def main(requests: int, levels: list[int], block_time: float, rail: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-paid-"))
    # No state checkpoints on the bench chain: durability is not what is measured, and dumping a growing
    # state pauses anvil for both servers alike, which only adds noise.
    devnet = Devnet(tmp / "chain", checkpoint_interval=3600, block_time=block_time)
    info = await devnet.start()
    print(f"chain: {'automine' if block_time == 0 else f'a block every {block_time:g} s'}", flush=True)
    # A server that settles one payment per block answers the last of `requests` after that many blocks.
    timeout = 120 + 2 * requests * block_time
    procs: list[subprocess.Popen[bytes]] = []
    tempo: TempoDevnet | None = None
    try:
        ref_port, our_port = free_port(), free_port()
        procs.append(
            spawn(
                [
                    "bench/_reference_server.py",
                    "--rpc",
                    info.rpc_url,
                    "--token",
                    info.token,
                    "--pay-to",
                    info.pay_to,
                    "--settler-key",
                    info.minter_key,
                    "--network",
                    info.network,
                    "--name",
                    info.token_name,
                    "--db",
                    str(tmp / "ref.db"),
                    "--amount",
                    "70000",
                    "--port",
                    str(ref_port),
                ]
            )
        )
        rail_args = [] if rail == "evm" else ["--devnet-rail", rail]
        procs.append(spawn_studio(info, tmp / "studio", our_port, *rail_args))
        servers = {
            "x402 SDK middleware (reference)": f"http://127.0.0.1:{ref_port}",
            "studio402": f"http://127.0.0.1:{our_port}",
        }
        for base in servers.values():
            await wait_up(base)
        if rail == "tempo":  # the server started it; this process's use keeps it up until the end
            tempo = TempoDevnet(tmp / "studio")
            await tempo.start()
        print(f"studio402 paid on: {rail}; the reference: x402 exact on EVM", flush=True)
        pids = dict(zip(servers, (procs[0].pid, procs[1].pid), strict=True))
        anvil_pid = int(json.loads((tmp / "chain" / "devnet" / "anvil.pid").read_text())["pid"])
        chain_pids = {label: anvil_pid for label in servers}  # the chain each one settles on
        if rail == "solana":
            chain_pids["studio402"] = int(json.loads((tmp / "studio/devnet/solana.pid").read_text())["pid"])
        elif tempo is not None:
            chain_pids["studio402"] = int(json.loads((tempo.root / "anvil.pid").read_text())["pid"])
        rows = []
        for concurrency in levels:
            row: dict[str, Any] = {"concurrency": concurrency}
            for label, base in servers.items():
                pid = pids[label]
                if label == "studio402":
                    cpu0, chain0 = cpu_seconds(pid), cpu_seconds(chain_pids[label])
                    elapsed, jobs = await measure_ours(
                        rail, devnet, tmp / "studio", tempo, base, requests, concurrency, timeout
                    )
                else:
                    # Funded together: on a block clock each mint waits for its block.
                    payers = list(
                        await asyncio.gather(*(new_payer(devnet, requests * PRICE) for _ in range(4)))
                    )
                    headers = await headers_for(devnet, base, payers, requests)
                    cpu0, chain0 = cpu_seconds(pid), cpu_seconds(chain_pids[label])
                    elapsed, jobs = await fire(base, headers, concurrency, timeout)
                cpu = (cpu_seconds(pid) - cpu0) / requests * 1000
                chain_cpu = (cpu_seconds(chain_pids[label]) - chain0) / requests * 1000
                assert len(jobs) == requests, f"{label}: {len(jobs)} distinct jobs for {requests} payments"
                row[label] = requests / elapsed
                print(
                    f"  {label}: {requests / elapsed:.1f} req/s, server CPU {cpu:.1f} ms/request, "
                    f"chain CPU {chain_cpu:.1f} ms/request",
                    flush=True,
                )
            rows.append(row)
            ratio = row["studio402"] / row["x402 SDK middleware (reference)"]
            print(
                f"concurrency {concurrency:>3}: reference {row['x402 SDK middleware (reference)']:7.1f} req/s"
                f" | studio402 {row['studio402']:7.1f} req/s | ratio {ratio:5.1f}x",
                flush=True,
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        if tempo is not None:  # the last user: this stops the Tempo anvil
            await tempo.stop()
        if rail == "solana":
            await solana_process.stop(tmp / "studio")
        await devnet.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--block-time", type=float, default=0.0, help="seconds per block; 0 = automine")
    parser.add_argument("--rail", choices=["evm", "tempo", "solana"], default="evm", help="studio402's rail")
    cli = parser.parse_args()
    asyncio.run(main(cli.requests, [int(c) for c in cli.concurrency.split(",")], cli.block_time, cli.rail))
