from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from studio402.chain.devnet import Devnet
from tests.devnet_fixture import devnet
from tests.paid_support import PaidServer, running_server

__all__ = ["devnet", "studio_server"]


@pytest.fixture(scope="module")
async def studio_server(
    devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PaidServer]:
    """One studio402 on the session devnet for a whole test module (tests use fresh payers)."""
    async with running_server(devnet, tmp_path_factory.mktemp("studio-mcp")) as server:
        yield server
