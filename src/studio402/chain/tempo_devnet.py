"""The Tempo devnet of one data dir: `anvil --network tempo`, persisted in `<data_dir>/devnet-tempo/`.

Same lifecycle as the EVM devnet (devnet.py): a live anvil serving the directory is reused, state is
checkpointed after every block and dumped on exit, the last user stops it. No token is deployed: Tempo's
TIP-20 precompiles exist from genesis, and every dev account holds ~1.8e13 pathUSD (6 decimals).

Roles: dev account 0 is the faucet (funding is a pathUSD `transfer` it sends as an unlocked account), dev
account 2 (the operator, as on the EVM devnet) is the recipient of MPP charges.

Local-node quirks (docs: shared/docs/mpp.md §10), handled here and in chain/tempo_settlement.py:
1. anvil 1.7.1 refuses the two-argument `eth_sendRawTransactionSync [raw, timeout]`: our RPC client sends
   `[raw]` only.
2. anvil 1.7.1 does not honour Tempo's expiring nonces (nonce key U256::MAX, nonce 0, bounded by
   `validBefore`): it counts them like a 2D nonce, so a payer's second payment never mines.
   `reset_expiring_nonce(payer)` sets that counter back to 0 in the nonce precompile's storage; the settler
   calls it before each broadcast on the devnet (and only there). Replays stay refused by our ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from studio402.chain import anvil
from studio402.chain.accounts import MINTER_KEY, OPERATOR_KEY
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.state import EXIT_DUMP_FILE, Checkpointer, StateStore, file_lock, write_atomic
from studio402.chain.token import decode_uint, encode_balance_of, encode_transfer
from studio402.config import Settings
from studio402.errors import ChainError, ConfigError, InputError

log = logging.getLogger(__name__)

PATH_USD = "0x20c0000000000000000000000000000000000000"
NONCE_PRECOMPILE = "0x4e4f4e4345000000000000000000000000000000"
EXPIRING_NONCE_KEY = (1 << 256) - 1
DEFAULT_CHAIN_ID = 42431  # Moderato's id: Tempo clients (mppx) refuse chain ids they do not know
DECIMALS = 6
_DIR = "devnet-tempo"
_TX_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class TempoDevnetInfo:
    rpc_url: str
    chain_id: int
    currency: str
    recipient: str
    faucet: str

    def as_public_json(self) -> dict[str, Any]:
        return {
            "rpcUrl": self.rpc_url,
            "chainId": self.chain_id,
            "currency": self.currency,
            "recipient": self.recipient,
        }


@dataclass(frozen=True, slots=True)
class _Meta:
    chain_id: int
    rpc_url: str
    created_at: float


def _read_meta(path: Path) -> _Meta | None:
    try:
        return _Meta(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _address(key: str) -> str:
    return str(Account.from_key(key).address)


def expiring_nonce_slot(address: str) -> str:
    """Storage slot of `nonces[address][U256::MAX]` in the nonce precompile (mapping at slot 0)."""
    inner = keccak(bytes.fromhex(address.removeprefix("0x").rjust(64, "0")) + bytes(32))
    return "0x" + keccak(EXPIRING_NONCE_KEY.to_bytes(32, "big") + inner).hex()


def _serving_record(root: Path) -> anvil.AnvilRecord | None:
    record = anvil.read_record(root / "anvil.pid")
    if record is None or not anvil.process_matches(record.pid, str(root / EXIT_DUMP_FILE)):
        return None
    return record


async def read_tempo_info(data_dir: Path) -> TempoDevnetInfo | None:
    """The running Tempo devnet of `data_dir`, or None."""
    root = Path(data_dir).resolve() / _DIR
    meta, record = _read_meta(root / "devnet.json"), _serving_record(root)
    if meta is None or record is None or await anvil.rpc_chain_id(record.rpc_url) != meta.chain_id:
        return None
    return _info(record.rpc_url, meta.chain_id)


def _info(rpc_url: str, chain_id: int) -> TempoDevnetInfo:
    return TempoDevnetInfo(rpc_url, chain_id, PATH_USD, _address(OPERATOR_KEY), _address(MINTER_KEY))


class TempoDevnet:
    """Start (or reuse) the Tempo devnet of `data_dir`; `stop()` when done."""

    def __init__(
        self,
        data_dir: Path,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        anvil_bin: str | None = None,
        checkpoint_interval: float = 0.1,
    ) -> None:
        self.root = Path(data_dir).resolve() / _DIR
        self.chain_id = chain_id
        self._anvil_bin = anvil_bin
        self._checkpoint_interval = checkpoint_interval
        self._store = StateStore(self.root)
        self._meta_path = self.root / "devnet.json"
        self._pid_path = self.root / "anvil.pid"
        self._user_file = self.root / "users" / f"{os.getpid()}-{id(self):x}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._rpc: AsyncRpc | None = None
        self._checkpointer: Checkpointer | None = None
        self._info: TempoDevnetInfo | None = None
        self.reused = False

    @property
    def info(self) -> TempoDevnetInfo:
        if self._info is None:
            raise ChainError("tempo devnet not started", code="devnet_not_started")
        return self._info

    @property
    def rpc(self) -> AsyncRpc:
        if self._rpc is None:
            raise ChainError("tempo devnet not started", code="devnet_not_started")
        return self._rpc

    async def start(self) -> TempoDevnetInfo:
        (self.root / "users").mkdir(parents=True, exist_ok=True)
        async with file_lock(self.root / "start.lock"):
            meta = _read_meta(self._meta_path)
            if meta is not None and meta.chain_id != self.chain_id:
                raise ConfigError(
                    f"{self.root} holds a Tempo devnet with chain id {meta.chain_id}, not {self.chain_id}"
                )
            rpc_url = await self._reuse() or await self._spawn(meta)
            self._rpc = AsyncRpc(rpc_url)
            checkpointer = Checkpointer(
                self._rpc, self._store, is_ours=self._serves_us, interval=self._checkpoint_interval
            )
            try:
                if meta is None or meta.rpc_url != rpc_url:
                    created = meta.created_at if meta is not None else time.time()
                    data = json.dumps(asdict(_Meta(self.chain_id, rpc_url, created)), indent=1).encode()
                    write_atomic(self._meta_path, data)
                await checkpointer.checkpoint()
            except BaseException:
                await self._abort_start()
                raise
            self._user_file.touch()
        self._checkpointer = checkpointer
        checkpointer.start()
        self._info = _info(rpc_url, self.chain_id)
        return self._info

    async def checkpoint(self) -> None:
        if self._checkpointer is None:
            raise ChainError("tempo devnet not started", code="devnet_not_started")
        await self._checkpointer.checkpoint()

    async def fund(self, address: str, micros: int) -> str:
        """Transfer `micros` pathUSD from the faucet to `address`; the tx hash, once mined."""
        if micros <= 0:
            raise InputError("the amount to fund must be positive")
        tx = {"from": self.info.faucet, "to": PATH_USD, "data": "0x" + encode_transfer(address, micros).hex()}
        tx_hash = str(await self.rpc.request("eth_sendTransaction", [tx]))
        receipt = await self.rpc.wait_for_receipt(tx_hash, timeout=_TX_TIMEOUT)
        if not receipt_succeeded(receipt):
            raise ChainError(f"pathUSD transfer to {address} reverted", code="devnet_mint_failed")
        return tx_hash

    async def balance_of(self, address: str) -> int:
        return decode_uint(await self.rpc.call(PATH_USD, encode_balance_of(address)))

    def hmac_secret(self) -> str:
        """The MPP challenge secret of this devnet: random, made once, shared by every process of the dir."""
        path = self.root / "mpp-secret"
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32))
        for _ in range(100):  # another process may be writing it right now
            secret = path.read_text(encoding="ascii").strip()
            if len(secret) == 64:
                return secret
            time.sleep(0.01)
        raise ChainError(f"{path} is not a 64-hex-digit secret", code="devnet_secret_invalid")

    async def reset_expiring_nonce(self, address: str) -> None:
        """Quirk 2 (module docstring): let `address` sign its next expiring-nonce transaction."""
        slot = expiring_nonce_slot(to_checksum_address(address))
        await self.rpc.request("anvil_setStorageAt", [NONCE_PRECOMPILE, slot, "0x" + "00" * 32])

    async def stop(self) -> None:
        if self._info is None:
            return
        if self._checkpointer is not None:
            await self._checkpointer.stop()
            try:
                await self._checkpointer.checkpoint()
            except ChainError as exc:
                log.warning("final tempo devnet checkpoint failed: %s", exc)
        self._user_file.unlink(missing_ok=True)
        if not self._other_users():
            record = _serving_record(self.root)
            if record is not None:
                await anvil.terminate(record.pid)
                self._store.promote_exit_dump()
                if anvil.read_record(self._pid_path) == record:
                    self._pid_path.unlink(missing_ok=True)
        if self._proc is not None:
            self._proc.poll()
        if self._rpc is not None:
            await self._rpc.aclose()
        self._checkpointer = self._rpc = self._info = None

    async def _abort_start(self) -> None:
        if self._proc is not None:
            await anvil.terminate(self._proc.pid)
            self._proc.wait()
            self._pid_path.unlink(missing_ok=True)
        await self.rpc.aclose()
        self._rpc = None

    async def _reuse(self) -> str | None:
        record = _serving_record(self.root)
        if record is None:
            return None
        if await anvil.rpc_chain_id(record.rpc_url) == self.chain_id:
            self.reused = True
            return record.rpc_url
        log.warning("tempo devnet anvil (pid %s) is not serving this devnet; restarting it", record.pid)
        await anvil.terminate(record.pid)
        return None

    async def _spawn(self, meta: _Meta | None) -> str:
        self._store.promote_exit_dump()
        binary = anvil.find_anvil(self._anvil_bin)
        last_port = urlsplit(meta.rpc_url).port if meta is not None else None
        log_path = self.root / "anvil.log"
        if last_port is not None:
            for _ in range(40):
                if anvil.port_is_free(last_port):
                    break
                await asyncio.sleep(0.05)
        for attempt in range(3):
            keep = last_port is not None and attempt == 0 and anvil.port_is_free(last_port)
            port = last_port if keep and last_port is not None else anvil.free_port()
            url = f"http://{anvil.HOST}:{port}"
            proc = anvil.spawn(
                binary,
                port=port,
                chain_id=self.chain_id,
                load_state=self._store.state_file if self._store.has_state() else None,
                exit_dump=self._store.exit_dump,
                log=log_path,
                extra_args=("--network", "tempo"),
            )
            try:
                await anvil.wait_ready(proc, url, log_path)
            except ChainError as exc:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if "in use" in exc.detail and attempt < 2:
                    continue
                raise
            anvil.write_record(self._pid_path, anvil.AnvilRecord(proc.pid, port, url, time.time()))
            self._proc = proc
            return url
        raise AssertionError("unreachable")

    def _serves_us(self) -> bool:
        record = _serving_record(self.root)
        return self._rpc is not None and record is not None and record.rpc_url == self._rpc.url

    def _other_users(self) -> bool:
        others = False
        for entry in (self.root / "users").iterdir():
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and anvil.pid_alive(int(pid)):
                others = True
            else:
                entry.unlink(missing_ok=True)
        return others


def tempo_devnet_for(settings: Settings) -> TempoDevnet:
    """The Tempo devnet of a configuration's data dir (the caller checks `[devnet] tempo`)."""
    return TempoDevnet(settings.data_dir, anvil_bin=settings.devnet.anvil_bin)
