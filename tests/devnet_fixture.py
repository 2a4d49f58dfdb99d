"""Reusable test support for a real devnet (anvil + TestUSDC). Use it from any conftest.py:

    from tests.devnet_fixture import devnet, settler  # noqa: F401  (re-exported fixtures)

`devnet` is session-scoped: one anvil per test session, in a temporary data dir, stopped at the end. It
automines unless the run asks for a block clock: `pytest --block-time=1` or `STUDIO402_TEST_BLOCK_TIME=1`
(the option wins), so the money tests can run on both modes. `devnet_blocks` is a second session devnet
with 1 s blocks (its own data dir), for tests that run on both modes within every run.
Tests isolate themselves with fresh payer keys (`new_payer`) rather than chain snapshots, so the
devnet's background checkpointer never sees the chain go backwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from studio402.chain.devnet import Devnet
from studio402.chain.rpc import AsyncRpc
from studio402.chain.token import (
    TransferAuthorization,
    eip712_domain_separator,
    sign_digest,
    transfer_with_authorization_digest,
)
from studio402.chain.wallet import SettlerWallet

BLOCK_TIME_ENV = "STUDIO402_TEST_BLOCK_TIME"
BLOCKS_SECONDS = 1.0  # the block clock of `devnet_blocks`


def add_block_time_option(parser: pytest.Parser) -> None:
    """Register `--block-time` (call from the root conftest's pytest_addoption)."""
    parser.addoption(
        "--block-time",
        type=float,
        default=None,
        help=f"block time in seconds of the session devnet (0 = automine; default: ${BLOCK_TIME_ENV} or 0)",
    )


def session_block_time(config: pytest.Config) -> float:
    option = config.getoption("--block-time", default=None)
    if option is not None:
        return float(option)
    return float(os.environ.get(BLOCK_TIME_ENV) or 0)


@contextlib.asynccontextmanager
async def _running_devnet(data_dir: Path, block_time: float) -> AsyncIterator[Devnet]:
    # A block clock makes a new (mostly empty) block every tick, and each new block means a dump of the
    # whole state; nothing reads a session devnet's checkpoints back, so take them less often there.
    net = Devnet(data_dir, block_time=block_time, checkpoint_interval=5.0 if block_time else 0.1)
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


@pytest.fixture(scope="session")
async def devnet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Devnet]:
    """The session devnet: automine unless `--block-time` / $STUDIO402_TEST_BLOCK_TIME says otherwise."""
    block_time = session_block_time(request.config)
    async with _running_devnet(tmp_path_factory.mktemp("devnet-data"), block_time) as net:
        yield net


@pytest.fixture(scope="session")
async def devnet_blocks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Devnet]:
    """A second session devnet that mines a block every second (no automine), whatever the run's mode."""
    async with _running_devnet(tmp_path_factory.mktemp("devnet-blocks"), BLOCKS_SECONDS) as net:
        yield net


@pytest.fixture(scope="session")
async def settler(devnet: Devnet) -> SettlerWallet:
    """The devnet's settler wallet (dev account 1), shared by the session."""
    return SettlerWallet(devnet.rpc, devnet.info.settler_key)


@dataclass(frozen=True, slots=True)
class Payer:
    key: str
    address: str


async def new_payer(devnet: Devnet, micros: int = 0) -> Payer:
    """A fresh key (no ETH: payers never pay gas), funded with `micros` test USDC when > 0."""
    account = Account.create()
    if micros > 0:
        await devnet.fund(account.address, micros)
    return Payer(key="0x" + bytes(account.key).hex(), address=str(account.address))


def authorize(
    devnet: Devnet,
    payer: Payer,
    value: int,
    *,
    to: str | None = None,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: bytes | None = None,
) -> tuple[TransferAuthorization, bytes]:
    """A TransferWithAuthorization for the devnet token, signed by `payer` (defaults: to payTo, 5 min)."""
    info = devnet.info
    auth = TransferAuthorization(
        from_address=payer.address,
        to=to or info.pay_to,
        value=value,
        valid_after=valid_after,
        valid_before=valid_before if valid_before is not None else int(time.time()) + 300,
        nonce=nonce or os.urandom(32),
    )
    separator = eip712_domain_separator(info.token_name, info.token_version, info.chain_id, info.token)
    return auth, sign_digest(transfer_with_authorization_digest(auth, separator), payer.key)


async def bystander(devnet: Devnet, rpc: AsyncRpc | None = None) -> SettlerWallet:
    """A wallet of a fresh key holding 1 ETH for gas (set by anvil, no transaction): someone else on the
    chain, whose nonces never collide with the devnet's roles. It sends through `rpc` (default: the node)."""
    account = Account.create()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10**18)])
    return SettlerWallet(rpc or devnet.rpc, "0x" + bytes(account.key).hex())
