"""`studio402 db upgrade | current`: the database schema's migrations (settings' database.url, or the data
dir's SQLite file)."""

from __future__ import annotations

import asyncio

import typer

from studio402.cli.common import ConfigOpt, DataDirOpt, fail, settings_from
from studio402.config import Settings
from studio402.db.engine import Database, database_url, open_database
from studio402.db.migrate import Revisions
from studio402.errors import Studio402Error

app = typer.Typer(no_args_is_help=True, help="The database schema (alembic migrations).")


def _url(settings: Settings) -> str:
    if settings.database.url is None:  # the data dir's SQLite file
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return database_url(settings.database.url, settings.data_dir)


def require_schema(settings: Settings) -> None:
    """For `serve` / `worker`, before they start: SQLite is migrated; an out-of-date PostgreSQL schema ends
    the command with the SchemaOutOfDate message (exit 2) rather than a traceback from the app's start-up."""

    async def check() -> None:
        db = await open_database(_url(settings))
        await db.dispose()

    try:
        asyncio.run(check())
    except Studio402Error as exc:
        fail(exc)


def _name(revision: str | None) -> str:
    return revision or "none"


@app.command()
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Migrate the database to this version's schema (stamps a database made before migrations)."""

    async def run() -> tuple[Revisions, Revisions]:
        db = Database(_url(settings_from(config, data_dir)))
        try:
            return await db.upgrade()
        finally:
            await db.dispose()

    try:
        before, after = asyncio.run(run())
    except Studio402Error as exc:
        fail(exc)
    if before.current == after.current:
        typer.echo(f"already at {_name(after.current)} (head)")
    else:
        typer.echo(f"upgraded {_name(before.current)} -> {_name(after.current)} (head)")


@app.command()
def current(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the database's schema revision and this version's head; exit 1 if they differ."""

    async def run() -> Revisions:
        db = Database(_url(settings_from(config, data_dir)))
        try:
            return await db.revisions()
        finally:
            await db.dispose()

    try:
        found = asyncio.run(run())
    except Studio402Error as exc:
        fail(exc)
    typer.echo(f"current: {_name(found.current)}\nhead: {found.head}")
    if not found.up_to_date:
        typer.secho("out of date: run `studio402 db upgrade`", fg="yellow", err=True)
        raise typer.Exit(1)
