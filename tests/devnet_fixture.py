"""Reusable test support for a real devnet (anvil + TestUSDC). Use it from any conftest.py:

    from tests.devnet_fixture import devnet, settler  # noqa: F401  (re-exported fixtures)

`devnet` is session-scoped: one anvil per test session, in a temporary data dir, stopped at the end.
Tests isolate themselves with fresh payer keys (`new_payer`) rather than chain snapshots, so the
devnet's background checkpointer never sees the chain go backwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from eth_account import Account

from studio402.chain.devnet import Devnet
from studio402.chain.token import (
    TransferAuthorization,
    eip712_domain_separator,
    sign_digest,
    transfer_with_authorization_digest,
)
from studio402.chain.wallet import SettlerWallet


@pytest.fixture(scope="session")
async def devnet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet-data"))
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


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
