from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from studio402.api.app import create_app
from studio402.config import Settings
from studio402.money import Asset
from studio402.payments.offers import Offer
from studio402.services import Services
from tests.devnet_fixture import add_block_time_option

STATIC_OFFER = Offer(
    Asset("eip155:31337", "0x5FbDB2315678afecb367f032d93F642f64180aa3", 6, "USD Coin", "2"),
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    300,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_block_time_option(parser)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a static offer (no chain needed): enough for everything up to the 402."""
    app = create_app(Services.with_offers(settings, [STATIC_OFFER]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as c:
        yield c


@pytest.fixture
async def settings_with_markup_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings().with_overrides(**{"pricing.markup_bps": 1500})
    app = create_app(Services.with_offers(settings, [STATIC_OFFER]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as c:
        yield c
