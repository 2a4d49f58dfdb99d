"""The scale-out job queue: procrastinate's schema, on PostgreSQL only (the embedded SQLite default runs
jobs in-process and has no queue).

The SQL is procrastinate's own `schema.sql` of the pinned version (pyproject pins procrastinate exactly):
upgrading procrastinate needs a new revision that runs the migration files it ships for the versions
crossed. It runs in this migration's transaction, statement by statement (asyncpg prepares each statement).

Revision ID: 0002_procrastinate
Revises: 0001_baseline
"""

from __future__ import annotations

from alembic import op

revision = "0002_procrastinate"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def statements(sql: str) -> list[str]:
    """Split a PostgreSQL script on the `;` that end lines outside `$$ ... $$` bodies."""
    found: list[str] = []
    current: list[str] = []
    quoted = False
    for line in sql.splitlines():
        current.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            if statement.rstrip(";").strip() and not _only_comments(statement):
                found.append(statement)
            current = []
    rest = "\n".join(current).strip()
    if rest and not _only_comments(rest):
        found.append(rest)
    return found


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is not None:
        return  # installed by hand (`procrastinate schema --apply`) before this revision existed
    from procrastinate.schema import SchemaManager  # only here: SQLite never needs procrastinate

    for statement in statements(SchemaManager.get_schema()):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    raise NotImplementedError("the job queue schema is not removed by a downgrade")
