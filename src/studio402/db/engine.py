"""Opening the database: SQLite in the data dir by default (WAL, one connection), or any async URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from studio402.db.schema import metadata


def database_url(url: str | None, data_dir: Path) -> str:
    return url or f"sqlite+aiosqlite:///{(data_dir / 'studio402.db').resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


async def open_database(url: str) -> AsyncEngine:
    """Create the engine and the tables (idempotent)."""
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and a single connection never hits
        # SQLITE_BUSY upgrading a read transaction. Transactions are kept short (never span RPC calls).
        engine = create_async_engine(url, poolclass=AsyncAdaptedQueuePool, pool_size=4, max_overflow=0,
                                     pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine
