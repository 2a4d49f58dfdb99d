"""Alembic's environment, loaded by `studio402.db.migrate` with the connection to migrate in
`config.attributes["connection"]` (already inside a transaction; committed by the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from studio402.db.migrate import ours
from studio402.db.schema import metadata

# Any fixed 64-bit key: concurrent upgraders of one PostgreSQL database wait for each other.
PG_MIGRATION_LOCK = 402_402_402


def run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the caller's transaction ends; alembic reads the current revision after it.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=ours,  # autogenerate leaves procrastinate's tables alone
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite rebuilds the table
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("studio402 migrations run from code: use `studio402 db upgrade`")
run(connection)
