"""Alembic migrations of studio402's schema, run from code by `studio402.db.migrate` (no alembic.ini).

Writing a revision: copy the latest file in `versions/`, give it the next id (`0002_...`) and set
`down_revision` to the previous id; write `upgrade()` with `op.*` (never `metadata.create_all`); change
`db/schema.py` in the same commit. `tests/db/test_migrations.py` fails while the two disagree.

A revision for one dialect only (e.g. the PostgreSQL job-queue schema) keeps the revision chain linear
and returns early on the other dialects, so every database still reaches the same head:

    def upgrade() -> None:
        if op.get_bind().dialect.name != "postgresql":
            return  # SQLite: nothing to do (the embedded default has no queue)
        op.execute(SQL_TEXT)

SQLite cannot ALTER most things in place: alter tables inside `with op.batch_alter_table("jobs") as b:`
(env.py turns on batch mode for SQLite, which rebuilds the table).
"""
