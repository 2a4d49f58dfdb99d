"""Schema migrations: alembic driven from code, on a connection the caller holds in a transaction.

`Database.upgrade()` / `Database.require_current()` (db/engine.py) call these; the revisions live in
`db/migrations/versions/` (see `db/migrations/__init__.py` for how to write one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.pool import NullPool

from studio402.db.schema import metadata
from studio402.errors import SchemaOutOfDate

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
# What `metadata.create_all` made before migrations existed: such a database is stamped to BASELINE.
BASELINE_TABLES = frozenset(
    {"payments", "jobs", "refunds", "credits", "credit_entries", "webhook_deliveries", "uploads"}
)
UPGRADE_HINT = "run `studio402 db upgrade` (with the same --config / --data-dir)"
# Tables a migration installs for a library (procrastinate's job queue): not in `schema.metadata`, so the
# schema comparison and autogenerate leave them (and their indexes) alone.
FOREIGN_TABLE_PREFIXES = ("procrastinate_",)


def ours(name: str | None, type_: str, _parent_names: Any = None) -> bool:
    """alembic's `include_name` hook: False for a library's tables."""
    return not (type_ == "table" and name is not None and name.startswith(FOREIGN_TABLE_PREFIXES))


def schema_diffs(conn: Connection, target: MetaData = metadata) -> list[Any]:
    """alembic's autogenerate comparison of the database with `schema.metadata`: [] when they agree."""
    context = MigrationContext.configure(conn, opts={"include_name": ours})
    return list(compare_metadata(context, target))


@dataclass(frozen=True, slots=True)
class Revisions:
    current: str | None  # None: no alembic_version (empty, or made by the old create_all)
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection  # env.py migrates this connection
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    heads = scripts().get_heads()
    assert len(heads) == 1, f"migrations must form one line, found heads {heads}"
    return heads[0]


def revisions(conn: Connection) -> Revisions:
    current = MigrationContext.configure(conn).get_current_heads()
    if len(current) > 1:
        raise SchemaOutOfDate(f"the database has several schema revisions {current}", code="schema_unknown")
    return Revisions(current[0] if current else None, head())


def require_current(conn: Connection) -> Revisions:
    """Raise SchemaOutOfDate unless the schema is at head (PostgreSQL is never migrated implicitly)."""
    found = revisions(conn)
    if found.up_to_date:
        return found
    _refuse_unknown(found)
    at = found.current or ("none (no migration table)" if _has_tables(conn) else "none (empty database)")
    raise SchemaOutOfDate(
        f"the database schema is at revision {at}, this studio402 needs {found.head}: {UPGRADE_HINT}",
        current=found.current,
        head=found.head,
    )


def upgrade(conn: Connection) -> tuple[Revisions, Revisions]:
    """Migrate to head; a database from before migrations is stamped to the baseline first.
    Returns the revisions before and after."""
    before = revisions(conn)
    _refuse_unknown(before)
    if before.current is None:
        tables = BASELINE_TABLES & set(inspect(conn).get_table_names())
        if tables == BASELINE_TABLES:
            MigrationContext.configure(conn).stamp(scripts(), BASELINE)
        elif tables:
            missing = ", ".join(sorted(BASELINE_TABLES - tables))
            raise SchemaOutOfDate(
                f"the database has some of studio402's tables but no schema revision (missing: {missing}); "
                "it cannot be migrated safely",
                code="schema_unknown",
            )
    if not before.up_to_date:
        command.upgrade(alembic_config(conn), "head")
    return before, revisions(conn)


def sqlite_migration_engine(url: str | URL) -> Engine:
    """A SQLite engine whose transactions start with BEGIN IMMEDIATE: DDL is transactional (pysqlite would
    otherwise run it in autocommit) and concurrent upgraders of one file wait for each other."""
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGINs: ours below is the only one
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _refuse_unknown(found: Revisions) -> None:
    if found.current is not None and not _known(found.current):
        raise SchemaOutOfDate(
            f"the database schema is at revision {found.current}, which this studio402 does not know "
            f"(its head is {found.head}): a newer studio402 migrated it",
            code="schema_unknown",
            current=found.current,
            head=found.head,
        )


def _known(revision: str) -> bool:
    try:
        return scripts().get_revision(revision) is not None
    except CommandError:  # alembic's "no such revision"
        return False


def _has_tables(conn: Connection) -> bool:
    return bool(BASELINE_TABLES & set(inspect(conn).get_table_names()))
