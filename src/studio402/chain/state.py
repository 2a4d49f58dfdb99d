"""Durable devnet chain state: atomic checkpoints of anvil's state, taken soon after every new block.

anvil keeps the chain in memory. Its `anvil_dumpState` RPC returns the whole state (accounts, storage,
blocks, receipts) as gzipped JSON; `--load-state` takes the plain JSON back on the next start. We write it
as tmp + fsync + rename (+ fsync of the directory), so `state.json` is always a complete checkpoint, even
after a crash or power loss. anvil also dumps on SIGTERM to `exit-state.json`; that dump is newer than any
checkpoint and is promoted to `state.json` before the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from studio402.chain.rpc import AsyncRpc
from studio402.errors import ChainError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
EXIT_DUMP_FILE = "exit-state.json"
_LOCK_FILE = "state.lock"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers (and a crash) see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data):x}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive flock on `path`, awaited without blocking the event loop (and cancellable)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.005)
        yield
    finally:
        os.close(fd)  # also releases the lock


class StateStore:
    """The state files of one devnet directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_file = root / STATE_FILE
        self.exit_dump = root / EXIT_DUMP_FILE
        self._lock_file = root / _LOCK_FILE

    def has_state(self) -> bool:
        return self.state_file.exists()

    def promote_exit_dump(self) -> bool:
        """Make anvil's dump-on-exit the checkpoint, if it is complete JSON; discard a torn one."""
        if not self.exit_dump.exists():
            return False
        try:
            json.loads(self.exit_dump.read_bytes())
        except ValueError:
            log.warning("discarding incomplete anvil exit dump %s", self.exit_dump)
            self.exit_dump.unlink()
            return False
        os.replace(self.exit_dump, self.state_file)
        _fsync_dir(self.root)
        return True

    def write_dump(self, dump_hex: str) -> int:
        """Store the result of anvil_dumpState (hex of gzipped JSON); returns the JSON size."""
        raw = bytes.fromhex(dump_hex.removeprefix("0x"))
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        write_atomic(self.state_file, data)
        return len(data)

    def locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Cross-process lock around dump + write, so an older dump never replaces a newer one."""
        return file_lock(self._lock_file)


class Checkpointer:
    """Dumps the chain after every new block (polled every `interval` s) and on demand (`checkpoint()`).

    Concurrent `checkpoint()` calls coalesce: each returns once a dump that started after its call is on
    disk. `is_ours()` guards against dumping some other chain that took over our port.
    """

    def __init__(
        self, rpc: AsyncRpc, store: StateStore, *, is_ours: Callable[[], bool], interval: float = 0.1
    ) -> None:
        self._rpc = rpc
        self._store = store
        self._is_ours = is_ours
        self._interval = interval
        self._lock = asyncio.Lock()
        self._requested = 0
        self._completed = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.last_dump_seconds = 0.0
        self.last_dump_bytes = 0

    async def checkpoint(self) -> None:
        """Persist the chain as it is now; returns when it is on disk. Raises ChainError on failure."""
        self._requested += 1
        ticket = self._requested
        async with self._lock:
            if self._completed >= ticket:
                return  # a dump that started after our call already finished
            covered = self._requested
            await self._dump()
            self._completed = covered

    async def _dump(self) -> None:
        if not self._is_ours():
            raise ChainError(
                "devnet process changed; not checkpointing a chain we do not own", code="devnet_not_ours"
            )
        # Shielded: a cancelled caller must not release the file lock while the write thread still runs.
        await asyncio.shield(self._dump_locked())

    async def _dump_locked(self) -> None:
        started = time.perf_counter()
        async with self._store.locked():
            dump_hex = await self._rpc.request("anvil_dumpState")
            self.last_dump_bytes = await asyncio.to_thread(self._store.write_dump, str(dump_hex))
        self.last_dump_seconds = time.perf_counter() - started

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="devnet-checkpointer")

    async def stop(self) -> None:
        """Stop watching; waits for a dump in progress (cancelling it could let it land after a newer one)."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def _watch(self) -> None:
        seen: str | None = None
        failing = False
        while not self._stopping.is_set():
            # Never spend more than about a third of the time dumping, however large the state grows.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(self._interval, 2 * self.last_dump_seconds))
                return
            try:
                head = await self._rpc.get_block("latest")
                head_hash = head.get("hash") if head else None
                if head_hash != seen:
                    await self.checkpoint()
                    seen = head_hash
                failing = False
            except Exception as exc:  # RPC, disk or dump errors alike: keep watching, retry next tick
                if not failing:
                    log.warning("devnet checkpoint failed (will retry): %s", exc)
                failing = True
