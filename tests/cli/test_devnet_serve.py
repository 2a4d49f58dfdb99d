"""`studio402 devnet serve`: the data dir's devnet alone in the foreground; others attach; SIGTERM ends it."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from studio402.chain import anvil

CLI = str(Path(sys.executable).with_name("studio402"))
ALL_RAILS = {"STUDIO402_DEVNET__TEMPO": "true", "STUDIO402_DEVNET__SOLANA": "true"}


def _first_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"devnet serve printed nothing in {timeout} s")
    line = proc.stdout.readline()
    assert line, f"devnet serve exited with {proc.wait()}"
    shown: dict[str, Any] = json.loads(line)
    return shown


def _live_pids(data: Path) -> dict[str, int]:
    """The devnet servers of a data dir, by pid file: EVM anvil, Tempo anvil, Solana server."""
    pids = {}
    for name in ("devnet/anvil.pid", "devnet-tempo/anvil.pid", "devnet/solana.pid"):
        path = data / name
        if path.exists():
            pids[name] = int(json.loads(path.read_text())["pid"])
    return pids


def test_serve_runs_the_devnet_until_sigterm_and_others_attach(tmp_path: Path) -> None:
    env = {**os.environ, **ALL_RAILS}
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [CLI, "devnet", "serve", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        shown = _first_line(proc, timeout=90)
        assert shown["chainId"] == 31337 and shown["reused"] is False
        assert shown["tempo"]["rpcUrl"].startswith("http://127.0.0.1:")
        assert shown["solana"]["rpcUrl"].startswith("http://127.0.0.1:")
        pids = _live_pids(data)
        assert len(pids) == 3 and all(anvil.pid_alive(pid) for pid in pids.values())

        # A second process attaches to the running devnet and leaves it running when it is done.
        info = subprocess.run(
            [CLI, "devnet", "info", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
            check=True,
        )
        attached = json.loads(info.stdout)
        assert attached["running"] is True and attached["rpcUrl"] == shown["rpcUrl"]
        assert attached["solana"]["running"] is True
        assert attached["tempo"]["rpcUrl"] == shown["tempo"]["rpcUrl"]
        assert proc.poll() is None and all(anvil.pid_alive(pid) for pid in pids.values())

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 10
        while any(anvil.pid_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [name for name, pid in pids.items() if anvil.pid_alive(pid)]  # nothing left running
        assert not (data / "devnet" / "anvil.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _live_pids(data).values():  # a failed run must not leak processes
            if anvil.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigint_before_anything_is_asked_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [CLI, "devnet", "serve", "--data-dir", str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        _first_line(proc, timeout=90)
        pid = _live_pids(data)["devnet/anvil.pid"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while anvil.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not anvil.pid_alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
