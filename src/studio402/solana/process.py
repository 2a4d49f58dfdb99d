"""One Solana devnet server per data dir, shared by every process (app, CLI, tests), like anvil for EVM.

The server is `python -m studio402.solana.rpc_server`; `devnet/solana.pid` names the live one ({pid, url}).
A live, answering server is reused; otherwise one is started. The server saves its state after every change,
so stopping it (SIGTERM) loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from studio402.chain.anvil import pid_alive
from studio402.chain.state import file_lock
from studio402.errors import ChainError

_START_TIMEOUT = 30.0


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "devnet" / "solana.pid"


def _live(data_dir: Path) -> tuple[int, str] | None:
    try:
        meta = json.loads(_pid_file(data_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid, url = int(meta["pid"]), str(meta["url"])
    return (pid, url) if pid_alive(pid) else None


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            answer = await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"})
        return bool(answer.json().get("result") == "ok")
    except (httpx.HTTPError, ValueError):
        return False


async def ensure_running(data_dir: Path) -> tuple[str, bool]:
    """(RPC URL, started by this call) of the data dir's Solana devnet."""
    (data_dir / "devnet").mkdir(parents=True, exist_ok=True)
    async with file_lock(data_dir / "devnet" / "solana.lock"):
        live = _live(data_dir)
        if live is not None and await _healthy(live[1]):
            return live[1], False
        # Its output goes to a file: an inherited stderr would keep the caller's pipe open for as long as
        # the server lives (a test runner or CI waiting for EOF would wait for ever).
        with (data_dir / "devnet" / "solana.log").open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
                [sys.executable, "-m", "studio402.solana.rpc_server", "--data-dir", str(data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives the CLI command that started it
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            live = _live(data_dir)
            if live is not None and live[0] == proc.pid:
                return live[1], True
            if proc.poll() is not None:
                raise ChainError(
                    f"the Solana devnet server exited with {proc.returncode}", code="devnet_failed"
                )
            await asyncio.sleep(0.02)
        proc.terminate()
        raise ChainError("the Solana devnet server did not start in time", code="devnet_failed")


async def stop(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop the data dir's Solana devnet server (if one runs); it saves its state first."""
    live = _live(data_dir)
    if live is None:
        return
    os.kill(live[0], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(live[0]) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
