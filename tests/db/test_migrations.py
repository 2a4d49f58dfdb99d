"""Schema migrations on SQLite and on the machine's PostgreSQL: the migrated schema is exactly
`schema.metadata` (alembic's autogenerate comparison), SQLite upgrades itself, PostgreSQL refuses an
out-of-date schema, an old create_all data dir is stamped, concurrent upgraders wait for each other."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
import typer
from sqlalchemy import Connection, create_engine, inspect

from studio402.cli.db import require_schema
from studio402.config import Settings
from studio402.db import migrate
from studio402.db.engine import open_database
from studio402.db.schema import metadata
from studio402.errors import SchemaOutOfDate

ADMIN_URL = os.environ.get("STUDIO402_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLI = str(Path(sys.executable).with_name("studio402"))
# A next revision for one dialect only, written as db/migrations/__init__.py says.
PG_ONLY = "9999_pg_only"
PG_ONLY_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "9999_pg_only"
down_revision = "{previous}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table("pg_only_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("pg_only_probe")
"""

NewPg = Callable[[], Awaitable[str]]


@pytest.fixture
async def new_pg() -> AsyncIterator[NewPg]:
    """Makes fresh, empty PostgreSQL databases (unique names); drops them after the test."""
    made: list[str] = []

    async def make() -> str:
        name = f"studio402_mig_{os.getpid()}_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        made.append(name)
        return ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name

    yield make
    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        for name in made:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.contextmanager
def pg_only_revision(tmp_path: Path) -> Iterator[None]:
    """The package's migrations plus a PostgreSQL-only revision after their head (a next release)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "r9999_pg_only.py").write_text(PG_ONLY_REVISION.format(previous=migrate.head()))
    saved = migrate.MIGRATIONS_DIR
    migrate.MIGRATIONS_DIR = scripts
    migrate.scripts.cache_clear()
    try:
        yield
    finally:
        migrate.MIGRATIONS_DIR = saved
        migrate.scripts.cache_clear()


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def our_tables(conn: Connection) -> set[str]:
    """Without the tables a migration installs for a library (procrastinate's, on PostgreSQL)."""
    return {name for name in table_names(conn) if migrate.ours(name, "table")}


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studio402.db'}"


async def test_fresh_sqlite_is_migrated_on_open_to_exactly_the_schema(tmp_path: Path) -> None:
    db = await open_database(sqlite_url(tmp_path))
    try:
        found = await db.revisions()
        assert found.current == found.head == migrate.head()
        assert await db.read(migrate.schema_diffs) == []
        assert await db.read(our_tables) == set(metadata.tables) | {"alembic_version"}
    finally:
        await db.dispose()


async def test_fresh_postgres_upgraded_is_exactly_the_schema(new_pg: NewPg) -> None:
    db = await open_database(await new_pg(), upgrade=True)
    try:
        assert (await db.revisions()).up_to_date
        assert await db.read(migrate.schema_diffs) == []
        assert await db.read(our_tables) == set(metadata.tables) | {"alembic_version"}
    finally:
        await db.dispose()


async def test_the_comparison_sees_a_schema_change_without_a_migration(tmp_path: Path) -> None:
    """What guards schema.py: a column (or table) added there and not in a revision is a diff."""
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("jobs", changed, sa.Column("priority", sa.Integer), extend_existing=True)
    db = await open_database(sqlite_url(tmp_path))
    try:
        diffs = await db.read(lambda conn: migrate.schema_diffs(conn, changed))
    finally:
        await db.dispose()
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "jobs", "priority")]


async def test_postgres_is_never_upgraded_implicitly(new_pg: NewPg) -> None:
    url = await new_pg()
    with pytest.raises(SchemaOutOfDate) as empty:
        await open_database(url)
    assert empty.value.code == "schema_out_of_date"
    assert "none (empty database)" in empty.value.detail and migrate.head() in empty.value.detail
    assert "studio402 db upgrade" in empty.value.detail
    assert empty.value.extra == {"current": None, "head": migrate.head()}
    db = await open_database(url, upgrade=True)
    await db.dispose()
    db = await open_database(url)  # at head: opens without upgrading
    try:
        assert (await db.revisions()).up_to_date
    finally:
        await db.dispose()


async def test_a_dialect_specific_revision(new_pg: NewPg, tmp_path: Path) -> None:
    """A release adds a PostgreSQL-only revision: a PostgreSQL database at the previous head refuses to
    open, naming both revisions, then upgrades; SQLite upgrades itself through it (nothing to do there)."""
    previous = migrate.head()
    pg_url, lite_url = await new_pg(), sqlite_url(tmp_path)
    for url in (pg_url, lite_url):  # as the previous release left them
        db = await open_database(url, upgrade=True)
        await db.dispose()
    with pg_only_revision(tmp_path):
        with pytest.raises(SchemaOutOfDate) as behind:
            await open_database(pg_url)
        assert f"at revision {previous}, this studio402 needs {PG_ONLY}" in behind.value.detail
        assert behind.value.extra == {"current": previous, "head": PG_ONLY}
        for url, probe in ((pg_url, True), (lite_url, False)):
            db = await open_database(url, upgrade=True if url == pg_url else None)
            try:
                assert (await db.revisions()).current == PG_ONLY
                assert ("pg_only_probe" in await db.read(table_names)) is probe
            finally:
                await db.dispose()


async def test_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    """A database migrated by a newer studio402 is neither opened nor 'upgraded'."""
    db = await open_database(sqlite_url(tmp_path))
    await db.write(
        lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    )
    await db.dispose()
    with pytest.raises(SchemaOutOfDate) as newer:
        await open_database(sqlite_url(tmp_path))
    assert newer.value.code == "schema_unknown" and "0099_future" in newer.value.detail


def make_legacy_data_dir(url: str) -> None:
    """What studio402 did before migrations: create_all, then some rows."""
    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.text("INSERT INTO credits (payer, balance_micros, updated_at) VALUES ('0xabc', 7, 1.0)")
        )
    engine.dispose()


async def test_an_old_create_all_sqlite_is_stamped_then_upgraded(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    make_legacy_data_dir(url)
    db = await open_database(url)
    try:
        assert (await db.revisions()).up_to_date
        assert await db.read(migrate.schema_diffs) == []
        rows = await db.read(
            lambda conn: conn.execute(sa.text("SELECT payer, balance_micros FROM credits")).all()
        )
        assert [tuple(r) for r in rows] == [("0xabc", 7)]  # kept, not recreated
    finally:
        await db.dispose()


async def test_an_old_create_all_sqlite_goes_through_later_revisions(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    make_legacy_data_dir(url)
    with pg_only_revision(tmp_path):
        db = await open_database(url)
        try:
            versions = await db.read(
                lambda conn: conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            )
            assert [r[0] for r in versions] == [PG_ONLY]
        finally:
            await db.dispose()


async def test_some_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.tables["payments"].create(conn)
    engine.dispose()
    with pytest.raises(SchemaOutOfDate) as partial:
        await open_database(url)
    assert partial.value.code == "schema_unknown" and "jobs" in partial.value.detail


OPEN_ONE = """
import asyncio, sys
from studio402.db.engine import open_database

async def main() -> None:
    db = await open_database(sys.argv[1], upgrade=True)
    await db.dispose()

asyncio.run(main())
"""


async def concurrent_opens(url: str, processes: int = 4) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_ONE, url, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        for _ in range(processes)
    ]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_processes_upgrading_one_fresh_database_at_once(
    engine: str, tmp_path: Path, new_pg: NewPg
) -> None:
    """Several processes starting on one fresh database: one migrates, the others wait and find it done
    (without the locks, some of them often fail on CREATE TABLE)."""
    url = sqlite_url(tmp_path) if engine == "sqlite" else await new_pg()
    await concurrent_opens(url)
    db = await open_database(url, upgrade=False)
    try:
        assert await db.read(migrate.schema_diffs) == []
        versions = await db.read(
            lambda conn: conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        )
        assert [r[0] for r in versions] == [migrate.head()]
    finally:
        await db.dispose()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


async def test_cli_db_current_and_upgrade_on_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    make_legacy_data_dir(f"sqlite:///{tmp_path / 'data' / 'studio402.db'}")  # from before migrations
    before = cli("db", "current", "--data-dir", "data", cwd=tmp_path)
    assert before.returncode == 1 and before.stdout == f"current: none\nhead: {migrate.head()}\n"
    assert "studio402 db upgrade" in before.stderr
    up = cli("db", "upgrade", "--data-dir", "data", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"upgraded none -> {migrate.head()} (head)"
    after = cli("db", "current", "--data-dir", "data", cwd=tmp_path)
    assert after.returncode == 0 and after.stdout == f"current: {migrate.head()}\nhead: {migrate.head()}\n"
    assert cli("db", "upgrade", "--data-dir", "data", cwd=tmp_path).stdout.startswith("already at")


async def test_cli_db_upgrade_uses_the_configured_postgres(tmp_path: Path, new_pg: NewPg) -> None:
    url = await new_pg()
    config = tmp_path / "studio402.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    with pytest.raises(SchemaOutOfDate):
        await open_database(url)
    up = cli("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    db = await open_database(url)  # what serve / worker do: now at head
    await db.dispose()
    assert not (tmp_path / ".studio402" / "studio402.db").exists()  # the data dir's SQLite was not used


async def test_serve_preflight_refuses_an_out_of_date_postgres_with_its_message(
    tmp_path: Path, new_pg: NewPg, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await new_pg()
    settings = Settings().with_overrides(**{"database.url": url, "data_dir": tmp_path / "data"})
    with pytest.raises(typer.Exit) as refused:
        await asyncio.to_thread(require_schema, settings)  # it runs its own event loop, as the CLI does
    assert refused.value.exit_code == 2
    err = capsys.readouterr().err
    assert "error (schema_out_of_date)" in err and "studio402 db upgrade" in err and migrate.head() in err
    await (await open_database(url, upgrade=True)).dispose()
    await asyncio.to_thread(require_schema, settings)  # at head: passes
    lite = Settings().with_overrides(data_dir=tmp_path / "lite")
    await asyncio.to_thread(require_schema, lite)  # the embedded default migrates itself
    db = await open_database(f"sqlite:///{tmp_path / 'lite' / 'studio402.db'}", upgrade=False)
    try:
        assert (await db.revisions()).up_to_date
    finally:
        await db.dispose()
