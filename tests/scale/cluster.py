"""A scale-out layout in processes for the tests: API (`studio402 serve`) and worker (`studio402 worker`)
processes on one PostgreSQL database and one data dir, paid on the session devnet, generating on a fake
upstream (fal) that lives in the test process (so it outlives every kill and counts every submission)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from x402.http.clients import x402HttpxClient

from studio402.chain.devnet import Devnet
from studio402.config import Settings, load_settings
from studio402.sdk.client import x402_client
from tests.fakes.fake_server import API_KEY
from tests.paid_support import network_config
from tests.pg_support import PgDatabase
from tests.server import free_port

IMAGE_ROUTE = "/api/generate/nano-banana/generate"
FAST_QUEUE = {  # notice dead workers within seconds, not the production half minute
    "lease_seconds": 3.0,
    "queue_heartbeat_seconds": 0.5,
    "queue_stalled_seconds": 2.0,
    "queue_sweep_seconds": 1,
    "queue_poll_seconds": 0.5,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(value)


@dataclass
class Proc:
    role: str
    index: int
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    root: Path
    config: Path
    db_url: str
    fake_url: str
    failpoints: dict[str, str] = field(default_factory=dict)  # role -> spec
    procs: list[Proc] = field(default_factory=list)
    kills: list[tuple[str, str]] = field(default_factory=list)  # (process, failpoint or "external")

    @classmethod
    def write(
        cls,
        root: Path,
        devnet: Devnet,
        db_url: str,
        fake_url: str,
        *,
        payments: dict[str, Any] | None = None,
        **jobs: Any,
    ) -> Cluster:
        root.mkdir(parents=True, exist_ok=True)
        config = root / "studio402.toml"
        sections: dict[str, dict[str, Any]] = {
            "database": {"url": db_url, "pool_size": 4, "max_overflow": 6},  # 4 processes < 100 clients
            "jobs": {**FAST_QUEUE, **jobs},
            "devnet": {"enabled": False},
            "backends": {"default": ["fal"], "routes": {"nano-banana": ["fal"]}},
            "backends.providers.fal": {
                "type": "fal",
                "api_key": API_KEY,
                "base_url": fake_url,
                "timeout_seconds": 10.0,
                "models": {"nano-banana": "fal-ai/nano-banana-2"},
            },
            "media": {"allow_http": True, "allowed_networks": ["127.0.0.0/8"]},
            "payments": payments or {},
        }
        lines = [f"data_dir = {_toml_value(str(root / 'data'))}"]
        for name, values in sections.items():
            lines += [f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in values.items())]
        lines.append("[[payments.networks]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in network_config(devnet.info).items()]
        config.write_text("\n".join(lines) + "\n")
        tomllib.loads(config.read_text())  # fail here, not in a subprocess, on a bad file
        return cls(root, config, db_url, fake_url)

    def settings(self) -> Settings:
        return load_settings(self.config)

    def _spawn(self, role: str, index: int, args: list[str], env: dict[str, str]) -> Proc:
        log = self.root / f"{role}-{index}-{len(self.procs)}.log"
        command = [sys.executable, "-c", "from studio402.cli.main import main; main()", *args]
        popen = subprocess.Popen(
            command,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("STUDIO402_")}, **env},
            start_new_session=True,
        )
        proc = Proc(role, index, popen, log)
        self.procs.append(proc)
        return proc

    def _env(self, role: str) -> dict[str, str]:
        spec = self.failpoints.get(role, "")
        return {"STUDIO402_JOBS__FAILPOINTS": spec} if spec else {}

    async def start_api(self, index: int, *, armed: bool = True, wait: bool = True) -> Proc:
        """An API process; with `wait`, once it answers /api/health (raises if it dies first)."""
        port = free_port()
        args = ["serve", "--config", str(self.config), "--port", str(port)]
        proc = self._spawn("api", index, args, self._env("api") if armed else {})
        proc.url = f"http://127.0.0.1:{port}"
        if wait:
            await self._wait_healthy(proc)
        return proc

    def start_worker(self, index: int, concurrency: int = 16, *, armed: bool = True) -> Proc:
        """A worker; `armed` with the cluster's worker failpoints (a restart after a kill usually is not)."""
        args = ["worker", "--config", str(self.config), "--concurrency", str(concurrency)]
        return self._spawn("worker", index, args, self._env("worker") if armed else {})

    async def _wait_healthy(self, proc: Proc, timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while asyncio.get_running_loop().time() < deadline:
                if not proc.alive:
                    raise AssertionError(f"{proc.role} {proc.index} died:\n{proc.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{proc.url}/api/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{proc.role} {proc.index} not healthy:\n{proc.log.read_text()[-3000:]}")

    def kill(self, proc: Proc) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()
        self.kills.append((f"{proc.role}-{proc.index}", "external"))

    def died_by_failpoint(self, proc: Proc) -> str | None:
        """The failpoint that killed `proc` (it says so on stderr before its SIGKILL), if one did."""
        if proc.popen.poll() != -signal.SIGKILL:
            return None
        lines = [x for x in proc.log.read_text(errors="replace").splitlines() if x.startswith("failpoint ")]
        return lines[-1].split()[1].rstrip(":") if lines else "unknown"

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait()


def upgrade_database(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", "from studio402.cli.main import main; main()", "db", "upgrade"]
        + ["--config", str(config)],
        check=True,
        capture_output=True,
    )


async def pay(base: str, key: str, body: dict[str, Any]) -> httpx.Response:
    """Pay the image route with the official x402 client."""
    async with x402HttpxClient(x402_client(key), base_url=base, timeout=60) as http:
        answer: httpx.Response = await http.post(IMAGE_ROUTE, json=body)
        return answer


@pytest.fixture
def pg() -> Iterator[PgDatabase]:
    """The cluster's own database (its processes share it; the session one is truncated per test)."""
    database = PgDatabase.create()
    yield database
    database.drop()


@contextlib.asynccontextmanager
async def running(cluster: Cluster) -> AsyncIterator[Cluster]:
    try:
        yield cluster
    finally:
        cluster.stop_all()
