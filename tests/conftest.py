from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from studio402.api.app import create_app
from studio402.config import Settings
from studio402.db.engine import Database, open_database
from studio402.money import Asset
from studio402.payments.offers import Offer
from studio402.wiring import Wiring
from tests.devnet_fixture import add_block_time_option
from tests.pg_support import PgDatabase, migrated_sqlite

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
    app = create_app(Wiring.with_offers(settings, [STATIC_OFFER]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as c:
        yield c


@pytest.fixture
async def settings_with_markup_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings().with_overrides(**{"pricing.markup_bps": 1500})
    app = create_app(Wiring.with_offers(settings, [STATIC_OFFER]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as c:
        yield c


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    """A fresh PostgreSQL database for this session (made on first use, dropped at the end)."""
    made = PgDatabase.create()
    yield made
    made.drop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("sqlite-template") / "studio402.db")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both engines: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "studio402.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    pg: PgDatabase = request.getfixturevalue("pg_database")
    await pg.truncate()
    return pg.url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """An opened database (schema built) on each engine."""
    opened = await open_database(db_url)
    yield opened
    await opened.dispose()
