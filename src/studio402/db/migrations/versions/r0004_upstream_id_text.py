"""jobs.upstream_id as TEXT: it is the provider's id (a polling URL, an operation name), of any length.
VARCHAR(200) took longer ones on SQLite and refused them on PostgreSQL, after the provider had accepted the
paid job: the id was lost and a restarted worker would submit the job again.

Revision ID: 0004_upstream_id_text
Revises: 0003_signature_lengths
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_upstream_id_text"
down_revision = "0003_signature_lengths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("upstream_id", type_=sa.Text(), existing_type=sa.String(200))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("upstream_id", type_=sa.String(200), existing_type=sa.Text())
