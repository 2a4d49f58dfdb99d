"""The embedded devnet of one data dir: anvil + our EIP-3009 test USDC, persisted in `<data_dir>/devnet/`.

    devnet/devnet.json     token address and EIP-712 domain, chain id, roles, last RPC URL
    devnet/anvil.pid       the serving anvil (pid, port, URL); a live one is reused by the next start
    devnet/state.json      the latest complete chain checkpoint (see state.py)
    devnet/users/          one file per live Devnet object; the last one to stop stops anvil

Roles use anvil's default dev accounts (accounts.py): 0 deploys and mints, 1 settles, 2 is the operator
(payTo and refunds), 3 is a demo payer funded with test USDC.

Mining: `block_time` 0 is automine (a block per transaction, at once); N > 0 mines a block every N s, so
transactions wait in the pool and receipts come with the next block, as on a real chain. Every path here
waits for receipts, so both modes work alike. A live anvil is reused only in the mode asked for (the node is
asked whether it automines: a test may have switched it). One in the other mode is restarted in the asked
mode (its state is dumped and loaded again) when no other process uses it; when one does, start() fails
with `devnet_mode_mismatch` rather than change the chain under that process's feet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_utils.address import to_checksum_address

from studio402.chain import anvil
from studio402.chain.accounts import DEMO_PAYER_KEY, MINTER_KEY, OPERATOR_KEY, SETTLER_KEY
from studio402.chain.contracts import load_token_artifact
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.state import EXIT_DUMP_FILE, Checkpointer, StateStore, file_lock, write_atomic
from studio402.chain.token import decode_uint, encode_balance_of, encode_deploy, encode_mint
from studio402.chain.wallet import SettlerWallet
from studio402.config import Settings
from studio402.errors import ChainError, ConfigError, InputError
from studio402.money import parse_usd

log = logging.getLogger(__name__)

DECIMALS = 6
_TX_TIMEOUT = 30.0
_MINT_GAS = 120_000


@dataclass(frozen=True, slots=True)
class DevnetInfo:
    rpc_url: str
    chain_id: int
    network: str  # CAIP-2, "eip155:<chain id>"
    token: str
    token_name: str
    token_version: str
    decimals: int
    pay_to: str
    settler_key: str
    refund_key: str
    minter_key: str
    demo_payer_key: str
    demo_payer: str

    def as_public_json(self) -> dict[str, Any]:
        """What clients may see (no keys)."""
        return {
            "rpcUrl": self.rpc_url,
            "chainId": self.chain_id,
            "network": self.network,
            "token": self.token,
            "payTo": self.pay_to,
            "demoPayer": self.demo_payer,
        }


@dataclass(frozen=True, slots=True)
class _Meta:
    """devnet.json: facts fixed when the token was deployed (plus the last RPC URL)."""

    chain_id: int
    token: str
    token_name: str
    token_symbol: str
    token_version: str
    decimals: int
    rpc_url: str
    created_at: float


def _read_meta(path: Path) -> _Meta | None:
    try:
        return _Meta(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write_meta(path: Path, meta: _Meta) -> None:
    write_atomic(path, json.dumps(asdict(meta), indent=1).encode())


def _address(key: str) -> str:
    return str(Account.from_key(key).address)


def _build_info(rpc_url: str, meta: _Meta) -> DevnetInfo:
    return DevnetInfo(
        rpc_url=rpc_url,
        chain_id=meta.chain_id,
        network=f"eip155:{meta.chain_id}",
        token=meta.token,
        token_name=meta.token_name,
        token_version=meta.token_version,
        decimals=meta.decimals,
        pay_to=_address(OPERATOR_KEY),
        settler_key=SETTLER_KEY,
        refund_key=OPERATOR_KEY,
        minter_key=MINTER_KEY,
        demo_payer_key=DEMO_PAYER_KEY,
        demo_payer=_address(DEMO_PAYER_KEY),
    )


def _devnet_root(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "devnet"


def _serving_record(root: Path) -> anvil.AnvilRecord | None:
    """The anvil of the pid file, if that process is alive and serves this dir."""
    record = anvil.read_record(root / "anvil.pid")
    # Its --dump-state path is part of its command line: it identifies the process serving this dir.
    if record is None or not anvil.process_matches(record.pid, str(root / EXIT_DUMP_FILE)):
        return None
    return record


async def _live_block_time(rpc: AsyncRpc, record: anvil.AnvilRecord) -> float:
    """The mode the serving anvil mines in now: 0 if it automines, else the block time it was started with
    (anvil reports its interval in whole seconds only)."""
    if await rpc.request("anvil_getAutomine"):
        return 0.0
    return record.block_time or float(await rpc.request("anvil_getIntervalMining"))


async def read_info(data_dir: Path) -> DevnetInfo | None:
    """The running devnet of `data_dir`, or None if none is running (for CLI commands)."""
    root = _devnet_root(data_dir)
    meta, record = _read_meta(root / "devnet.json"), _serving_record(root)
    if meta is None or record is None:
        return None
    if await anvil.rpc_chain_id(record.rpc_url) != meta.chain_id:
        return None
    return _build_info(record.rpc_url, meta)


class Devnet:
    """Start (or reuse) the devnet of `data_dir`; `stop()` when done."""

    def __init__(
        self,
        data_dir: Path,
        *,
        chain_id: int = 31337,
        token_name: str = "USD Coin",  # noqa: S107 - a token name, not a secret
        token_symbol: str = "USDC",  # noqa: S107
        token_version: str = "2",  # noqa: S107
        anvil_bin: str | None = None,
        demo_funds_micros: int = 100_000_000,
        checkpoint_interval: float = 0.1,
        block_time: float = 0.0,
    ) -> None:
        if block_time < 0:
            raise ConfigError(f"devnet block time must be >= 0 s, not {block_time:g}")
        self.root = _devnet_root(data_dir)
        self.block_time = block_time
        self.chain_id = chain_id
        self._token_args = (token_name, token_symbol, token_version)
        self._anvil_bin = anvil_bin
        self._demo_funds = demo_funds_micros
        self._checkpoint_interval = checkpoint_interval
        self._store = StateStore(self.root)
        self._meta_path = self.root / "devnet.json"
        self._pid_path = self.root / "anvil.pid"
        self._user_file = self.root / "users" / f"{os.getpid()}-{id(self):x}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._rpc: AsyncRpc | None = None
        self._minter: SettlerWallet | None = None
        self._checkpointer: Checkpointer | None = None
        self._info: DevnetInfo | None = None
        self.reused = False  # True when start() found a live anvil and attached to it

    @property
    def info(self) -> DevnetInfo:
        if self._info is None:
            raise ChainError("devnet not started", code="devnet_not_started")
        return self._info

    @property
    def rpc(self) -> AsyncRpc:
        if self._rpc is None:
            raise ChainError("devnet not started", code="devnet_not_started")
        return self._rpc

    async def start(self) -> DevnetInfo:
        (self.root / "users").mkdir(parents=True, exist_ok=True)
        async with file_lock(self.root / "start.lock"):
            meta = _read_meta(self._meta_path)
            if meta is not None and meta.chain_id != self.chain_id:
                raise ConfigError(
                    f"{self.root} holds a devnet with chain id {meta.chain_id}, not {self.chain_id}: "
                    "use that chain id or another data dir"
                )
            rpc_url = await self._reuse(meta) or await self._spawn(meta)
            self._rpc = AsyncRpc(rpc_url)
            self._minter = SettlerWallet(self._rpc, MINTER_KEY, gas_limit_default=_MINT_GAS)
            checkpointer = Checkpointer(
                self._rpc, self._store, is_ours=self._serves_us, interval=self._checkpoint_interval
            )
            try:
                meta = await self._ensure_token(meta, rpc_url)
                await checkpointer.checkpoint()
            except BaseException:
                await self._abort_start()
                raise
            self._user_file.touch()
        self._checkpointer = checkpointer
        checkpointer.start()
        self._info = _build_info(rpc_url, meta)
        return self._info

    async def checkpoint(self) -> None:
        """Persist the chain now (e.g. right after a settlement); returns once it is on disk."""
        if self._checkpointer is None:
            raise ChainError("devnet not started", code="devnet_not_started")
        await self._checkpointer.checkpoint()

    async def fund(self, address: str, micros: int) -> str:
        """Mint `micros` test USDC to `address`; the tx hash, once mined."""
        if micros <= 0:
            raise InputError("the amount to fund must be positive")
        return await self._mint(self.info.token, address, micros)

    async def balance_of(self, address: str) -> int:
        return decode_uint(await self.rpc.call(self.info.token, encode_balance_of(address)))

    async def stop(self) -> None:
        """Checkpoint and detach; the last user also stops anvil (SIGTERM: it dumps its state too).
        Does nothing unless started, so calling it twice is harmless."""
        if self._info is None:
            return
        if self._checkpointer is not None:
            await self._checkpointer.stop()
            try:
                await self._checkpointer.checkpoint()
            except ChainError as exc:
                log.warning("final devnet checkpoint failed: %s", exc)
        self._user_file.unlink(missing_ok=True)
        if not self._other_users():
            await self._stop_anvil()
        if self._proc is not None:
            self._proc.poll()  # reap our child if it has exited
        if self._rpc is not None:
            await self._rpc.aclose()
        self._checkpointer = self._rpc = self._minter = self._info = None

    async def _abort_start(self) -> None:
        if self._proc is not None:  # we spawned it: nobody else knows about it yet
            await anvil.terminate(self._proc.pid)
            self._proc.wait()
            self._pid_path.unlink(missing_ok=True)
        await self.rpc.aclose()
        self._rpc = self._minter = None

    # -- start-up ---------------------------------------------------------------------------------------

    async def _reuse(self, meta: _Meta | None) -> str | None:
        """The URL of a live, healthy anvil already serving this dir; a sick one is stopped."""
        record = _serving_record(self.root)
        if record is None:
            return None
        if meta is not None and await anvil.rpc_chain_id(record.rpc_url) == self.chain_id:
            async with AsyncRpc(record.rpc_url) as rpc:
                if await rpc.get_code(meta.token):
                    live = await _live_block_time(rpc, record)
                    if live == self.block_time:
                        self.reused = True
                        return record.rpc_url
                    self._refuse_mode_change(live)
                    log.info(
                        "devnet anvil (pid %s) runs with %s; restarting it with %s",
                        record.pid,
                        anvil.describe_mining(live),
                        anvil.describe_mining(self.block_time),
                    )
                    await anvil.terminate(record.pid)  # dumps its state: the restart loads it
                    return None
        log.warning("devnet anvil (pid %s) is not serving this devnet correctly; restarting it", record.pid)
        await anvil.terminate(record.pid)
        return None

    def _refuse_mode_change(self, live: float) -> None:
        """Another process on this devnet expects the mode it runs in: switching it would break its waits."""
        if self._other_users():
            raise ConfigError(
                f"the devnet of {self.root} is running with {anvil.describe_mining(live)} and is used by "
                f"another process; stop that process first, or set devnet.block_time_seconds = {live:g}",
                code="devnet_mode_mismatch",
            )

    async def _spawn(self, meta: _Meta | None) -> str:
        self._store.promote_exit_dump()
        binary = anvil.find_anvil(self._anvil_bin)
        # Keep the last port when possible, so clients that cached the RPC URL keep working.
        last_port = urlsplit(meta.rpc_url).port if meta is not None else None
        log_path = self.root / "anvil.log"
        if last_port is not None:
            # Connections to a just-killed anvil can hold its port for a moment: wait a little for it.
            for _ in range(40):
                if anvil.port_is_free(last_port):
                    break
                await asyncio.sleep(0.05)
        for attempt in range(3):
            keep = last_port is not None and attempt == 0 and anvil.port_is_free(last_port)
            port = last_port if keep and last_port is not None else anvil.free_port()
            url = f"http://{anvil.HOST}:{port}"
            load = self._store.state_file if self._store.has_state() else None
            proc = anvil.spawn(
                binary,
                port=port,
                chain_id=self.chain_id,
                load_state=load,
                exit_dump=self._store.exit_dump,
                log=log_path,
                block_time=self.block_time,
            )
            try:
                await anvil.wait_ready(proc, url, log_path)
            except ChainError as exc:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if "in use" in exc.detail and attempt < 2:
                    continue  # lost a race for the port
                raise
            record = anvil.AnvilRecord(proc.pid, port, url, time.time(), self.block_time)
            anvil.write_record(self._pid_path, record)
            self._proc = proc
            return url
        raise AssertionError("unreachable")

    async def _ensure_token(self, meta: _Meta | None, rpc_url: str) -> _Meta:
        rpc = self.rpc
        if meta is not None and await rpc.get_code(meta.token):
            if meta.rpc_url != rpc_url:
                meta = _Meta(**{**asdict(meta), "rpc_url": rpc_url})
                _write_meta(self._meta_path, meta)
            return meta
        if meta is not None:
            log.warning("devnet chain state in %s was lost; deploying a fresh token", self.root)
        meta = await self._deploy(rpc_url)
        if self._demo_funds > 0:
            await self._mint(meta.token, _address(DEMO_PAYER_KEY), self._demo_funds)
        _write_meta(self._meta_path, meta)
        return meta

    async def _deploy(self, rpc_url: str) -> _Meta:
        name, symbol, version = self._token_args
        minter = self._minter
        assert minter is not None
        artifact = load_token_artifact()
        data = encode_deploy(artifact.bytecode, name, symbol, version, DECIMALS)
        gas = await self.rpc.estimate_gas(None, data, from_=minter.address)
        receipt = await minter.send_and_wait(None, data, gas=gas * 6 // 5, timeout=_TX_TIMEOUT)
        if not receipt_succeeded(receipt) or not receipt.get("contractAddress"):
            raise ChainError("deploying the devnet token failed", code="devnet_deploy_failed")
        token = to_checksum_address(str(receipt["contractAddress"]))
        return _Meta(self.chain_id, token, name, symbol, version, DECIMALS, rpc_url, time.time())

    async def _mint(self, token: str, to: str, micros: int) -> str:
        minter = self._minter
        assert minter is not None
        receipt = await minter.send_and_wait(token, encode_mint(to, micros), timeout=_TX_TIMEOUT)
        if not receipt_succeeded(receipt):
            raise ChainError(f"mint to {to} reverted", code="devnet_mint_failed")
        return str(receipt["transactionHash"])

    # -- ownership ------------------------------------------------------------------------------------------

    def _serves_us(self) -> bool:
        record = _serving_record(self.root)
        return self._rpc is not None and record is not None and record.rpc_url == self._rpc.url

    def _other_users(self) -> bool:
        """True if another live Devnet object (this or another process) still uses the devnet."""
        others = False
        for entry in (self.root / "users").iterdir():
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and anvil.pid_alive(int(pid)):
                others = True
            else:
                entry.unlink(missing_ok=True)  # left by a process that died
        return others

    async def _stop_anvil(self) -> None:
        record = _serving_record(self.root)
        if record is None:
            return
        await anvil.terminate(record.pid)
        self._store.promote_exit_dump()
        if anvil.read_record(self._pid_path) == record:
            self._pid_path.unlink(missing_ok=True)


def devnet_for(settings: Settings) -> Devnet:
    """The devnet of a configuration's data dir, as `[devnet]` describes it."""
    dev = settings.devnet
    return Devnet(
        settings.data_dir,
        chain_id=dev.chain_id,
        token_name=dev.token_name,
        token_symbol=dev.token_symbol,
        token_version=dev.token_version,
        anvil_bin=dev.anvil_bin,
        demo_funds_micros=parse_usd(dev.demo_funds_usd),
        block_time=dev.block_time_seconds,
    )
