"""Baseline: the tables `metadata.create_all` made before migrations existed (an old data dir is stamped
to this revision, so this DDL must stay exactly what it was).

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(80), nullable=False),
        sa.Column("client_id", sa.String(128)),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("route", sa.String(80), nullable=False),
        sa.Column("micros", sa.BigInteger, nullable=False),
        sa.Column("asset", sa.String(64)),
        sa.Column("amount", sa.String(80)),
        sa.Column("pay_to", sa.String(64)),
        sa.Column("valid_before", sa.BigInteger),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(80)),
        sa.Column("raw_tx", sa.Text),
        sa.Column("reason", sa.String(120)),
        sa.Column("payload", sa.Text),
        sa.Column("job_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("network", "payer", "nonce", name="uq_payment_key"),
        sa.UniqueConstraint("payer", "client_id", name="uq_payment_client_id"),
    )
    op.create_index("ix_payments_state", "payments", ["state"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("model", sa.String(40), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("payment_id", sa.String(40)),
        sa.Column("micros", sa.BigInteger, nullable=False),
        sa.Column("backend", sa.String(64)),
        sa.Column("upstream_id", sa.String(200)),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error_code", sa.String(80)),
        sa.Column("error_message", sa.Text),
        sa.Column("refund", sa.Text),
        sa.Column("callback_url", sa.Text),
        sa.Column("webhook_secret", sa.String(64)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("ix_jobs_payer_created", "jobs", ["payer", "created_at"])
    op.create_index("ix_jobs_runnable", "jobs", ["status", "held", "lease_expires"])

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False, unique=True),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("micros", sa.BigInteger, nullable=False),
        sa.Column("network", sa.String(64)),
        sa.Column("asset", sa.String(64)),
        sa.Column("amount", sa.String(80)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(80)),
        sa.Column("raw_tx", sa.Text),
        sa.Column("reason", sa.String(120)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_refunds_state", "refunds", ["state"])

    op.create_table(
        "credits",
        sa.Column("payer", sa.String(64), primary_key=True),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )

    op.create_table(
        "credit_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("delta_micros", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(40)),
        sa.Column("payment_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_credit_entries_payer", "credit_entries", ["payer"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("job_id", "event", name="uq_webhook_job_event"),
    )
    op.create_index("ix_webhook_due", "webhook_deliveries", ["state", "next_at"])

    op.create_table(
        "uploads",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=False, unique=True),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("pathname", sa.String(300), nullable=False, unique=True),
        sa.Column("content_type", sa.String(80), nullable=False),
        sa.Column("max_bytes", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("uploads", "webhook_deliveries", "credit_entries", "credits", "refunds", "jobs"):
        op.drop_table(table)
    op.drop_table("payments")
