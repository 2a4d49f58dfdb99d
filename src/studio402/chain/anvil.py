"""Finding, spawning, recognising and stopping the anvil process of a devnet directory.

anvil is spawned directly (not through npm's node wrapper, which may leave the binary behind when it is
killed) in its own session, so Ctrl-C on the server does not kill the chain before a clean stop.
A process is recognised as ours by its command line, which names the devnet directory: a recycled pid of
some other program is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from studio402.errors import ChainError, ConfigError

ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64"
ANVIL_RELATIVE = Path(".tools/node_modules") / ANVIL_PACKAGE / "bin/anvil"
SETUP_HINT = f"npm install --prefix .tools {ANVIL_PACKAGE}@1.7.1"
HOST = "127.0.0.1"


def find_anvil(explicit: str | None = None) -> str:
    """The anvil binary: `explicit`, else ./.tools/…, else the checkout's .tools/…, else anvil on PATH."""
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise ConfigError(f"devnet.anvil_bin {explicit!r} is not an executable file")
    checkout_root = Path(__file__).resolve().parents[3]
    for candidate in (Path.cwd() / ANVIL_RELATIVE, checkout_root / ANVIL_RELATIVE):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise ConfigError(
        "the embedded devnet needs the anvil binary, which was not found. "
        f"Install it from the project root with: {SETUP_HINT}  (or set devnet.anvil_bin)",
        code="anvil_not_found",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As a server would: connections of the previous anvil lingering in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class AnvilRecord:
    """Contents of the pid file: which process serves the devnet, and where."""

    pid: int
    port: int
    rpc_url: str
    started_at: float
    block_time: float = 0.0  # what it was started with: 0 = automine (also for records older than the field)


def read_record(path: Path) -> AnvilRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AnvilRecord(
            pid=int(data["pid"]),
            port=int(data["port"]),
            rpc_url=str(data["rpc_url"]),
            started_at=float(data["started_at"]),
            block_time=float(data.get("block_time", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path: Path, record: AnvilRecord) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """True for a running process; False for none or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: fall back to a signal-0 probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def process_matches(pid: int, marker: str) -> bool:
    """True if `pid` is alive and its command line contains `marker` (our devnet directory)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def describe_mining(block_time: float) -> str:
    return "automine" if block_time == 0 else f"{block_time:g} s blocks"


def spawn(
    anvil_bin: str,
    *,
    port: int,
    chain_id: int,
    load_state: Path | None,
    exit_dump: Path,
    log: Path,
    block_time: float = 0.0,
    extra_args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start anvil; on SIGTERM it dumps its state to `exit_dump`. `block_time` > 0 mines a block every that
    many seconds (interval mining) instead of one per transaction. `extra_args`: e.g. `--network tempo`."""
    args = [anvil_bin, "--host", HOST, "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    args += extra_args
    args += ["--dump-state", str(exit_dump)]
    if block_time > 0:
        args += ["--block-time", f"{block_time:.6f}".rstrip("0").rstrip(".")]
    if load_state is not None:
        args += ["--load-state", str(load_state)]
    with log.open("wb") as log_file:
        return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )


async def rpc_chain_id(rpc_url: str, *, timeout: float = 1.0) -> int | None:
    """eth_chainId of the node at `rpc_url`, or None if it does not answer."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(rpc_url, json=payload)
            return int(response.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


async def wait_ready(
    proc: subprocess.Popen[bytes], rpc_url: str, log: Path, *, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ChainError(f"anvil exited with code {proc.returncode}: {tail.strip()}", code="anvil_failed")
        if await rpc_chain_id(rpc_url, timeout=0.5) is not None:
            return
        await asyncio.sleep(0.01)
    raise ChainError(f"anvil did not answer on {rpc_url} within {timeout:g} s", code="anvil_failed")


async def terminate(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM (anvil dumps its state on the way out), then SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            await asyncio.sleep(0.01)
