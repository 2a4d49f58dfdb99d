"""The machine's PostgreSQL for the tests: one fresh database per test session, dropped at its end.

    STUDIO402_TEST_PG   the server's maintenance URL (default postgresql://postgres@127.0.0.1:5432/postgres)

Each session creates `studio402_test_<pid>_<random>`, builds the schema once, and truncates every table
before each test (milliseconds, where a database per test costs ~0.3 s). Databases left by a session that
died (its pid is gone) are dropped at the next start. Unreachable server: the PostgreSQL variants FAIL in CI
(`CI` set), so a broken CI setup can never pass by skipping; locally they skip with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from studio402.db.engine import open_database

T = TypeVar("T")
ADMIN_URL = os.environ.get("STUDIO402_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "studio402_test_"
KEEP = frozenset({"alembic_version"})  # schema bookkeeping survives the per-test truncation


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on its own loop in a helper thread: session setup may not touch the tests' loop."""
    box: dict[str, T | BaseException] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="pg-support")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def unavailable(reason: str) -> NoReturn:
    message = f"PostgreSQL at {ADMIN_URL} is unreachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI runs every test on PostgreSQL too (.ci/run starts it)", pytrace=False)
    pytest.skip(message + "; start it to run the PostgreSQL variants")


async def _terminate_and_drop(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drop_orphans(admin: asyncpg.Connection) -> None:
    """Databases of sessions that died before their teardown (their pid no longer runs here)."""
    rows = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX + "%")
    for row in rows:
        pid = row["datname"].removeprefix(PREFIX).split("_", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(asyncpg.PostgresError):
                await _terminate_and_drop(admin, row["datname"])


@dataclass
class PgDatabase:
    """The session's database: `url` for SQLAlchemy (asyncpg driver), `dsn` for asyncpg."""

    name: str
    dsn: str

    @property
    def url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    @classmethod
    def create(cls) -> PgDatabase:
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"

        async def make() -> PgDatabase:
            admin = await asyncpg.connect(ADMIN_URL, timeout=5)
            try:
                await _drop_orphans(admin)
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            made = cls(name, _with_database(ADMIN_URL, name))
            db = await open_database(made.url, upgrade=True)  # the schema, as `studio402 db upgrade` makes it
            await db.dispose()
            return made

        try:
            return in_thread(make)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            unavailable(f"{type(exc).__name__}: {exc}")

    def drop(self) -> None:
        async def drop() -> None:
            admin = await asyncpg.connect(ADMIN_URL, timeout=5)
            try:
                await _terminate_and_drop(admin, self.name)
            finally:
                await admin.close()

        in_thread(drop)

    async def truncate(self) -> None:
        """Empty every table; run on the tests' loop before each test. DELETE, not TRUNCATE: on tables of a
        few rows TRUNCATE's new files cost ~0.2 s a test, DELETE ~5 ms. Foreign keys (procrastinate's)
        are not checked meanwhile (replica role), so the order does not matter."""
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            names = [
                r["tablename"]
                for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                if r["tablename"] not in KEEP
            ]
            deletes = "".join(f'DELETE FROM "{n}";' for n in names)  # noqa: S608 (names from pg_tables)
            await conn.execute(f"SET session_replication_role = replica;{deletes}")
        finally:
            await conn.close()


def migrated_sqlite(path: Path) -> Path:
    """A SQLite file at the schema's head, to copy for each test (migrating each fresh file costs ~0.1 s)."""

    async def make() -> None:
        db = await open_database(f"sqlite:///{path}")
        await db.dispose()  # the last connection closing checkpoints the WAL into the file

    in_thread(make)
    return path
