"""Room for Solana signatures: a Solana payment's nonce and transaction id, and a Solana refund's
transaction id, are a 64-byte signature in base58 (up to 88 characters). VARCHAR(80) took them on SQLite,
which ignores lengths, and refused them on PostgreSQL.

Revision ID: 0003_signature_lengths
Revises: 0002_procrastinate
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_signature_lengths"
down_revision = "0002_procrastinate"
branch_labels = None
depends_on = None

WIDENED = (("payments", "nonce"), ("payments", "tx_hash"), ("refunds", "tx_hash"))


def upgrade() -> None:
    for table, column in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.String(128), existing_type=sa.String(80))


def downgrade() -> None:
    for table, column in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.String(80), existing_type=sa.String(128))
