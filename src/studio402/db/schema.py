"""Tables. Amounts: micro-dollars as BigInteger; on-chain atomic amounts as strings (they may exceed 64 bits).
Times are epoch seconds (float) so leases and ages are plain arithmetic on every backend."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("network", String(64), nullable=False),  # CAIP-2, or "credit" for balance spends
    Column("payer", String(64), nullable=False),  # lowercase address
    Column("nonce", String(128), nullable=False),  # EIP-3009 nonce, Solana signature, SIWX nonce (credit)
    Column("client_id", String(128)),  # x402 payment-identifier extension
    Column("fingerprint", String(64), nullable=False),
    Column("route", String(80), nullable=False),
    Column("micros", BigInteger, nullable=False),
    Column("asset", String(64)),
    Column("amount", String(80)),  # atomic units of `asset`
    Column("pay_to", String(64)),
    Column("valid_before", BigInteger),
    Column("state", String(16), nullable=False),
    Column("tx_hash", String(128)),  # a Solana signature is up to 88 characters
    Column("raw_tx", Text),
    Column("reason", String(120)),
    Column("payload", Text),  # the verified authorization (JSON), for the reconciler
    Column("job_id", String(40)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("network", "payer", "nonce", name="uq_payment_key"),
    UniqueConstraint("payer", "client_id", name="uq_payment_client_id"),
    Index("ix_payments_state", "state"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("payer", String(64), nullable=False),
    Column("model", String(40), nullable=False),
    Column("operation", String(40), nullable=False),
    Column("request", Text, nullable=False),  # canonical JSON body
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("held", Boolean, nullable=False, default=False),  # payment not settled yet: do not run
    Column("deleted", Boolean, nullable=False, default=False),  # hidden by its owner; kept for the audit
    Column("payment_id", String(40)),
    Column("micros", BigInteger, nullable=False),
    Column("backend", String(64)),
    Column("upstream_id", Text),  # the provider's id or polling URL, any length
    Column("progress", Integer, nullable=False, default=0),
    Column("result", Text),  # JSON: blob keys of the outputs
    Column("error_code", String(80)),
    Column("error_message", Text),
    Column("refund", Text),  # JSON {amount, method, tx, state}
    Column("callback_url", Text),
    Column("webhook_secret", String(64)),  # signs this job's webhooks (whsec_...); never in a job view
    Column("lease_owner", String(64)),
    Column("lease_expires", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Index("ix_jobs_payer_created", "payer", "created_at"),
    Index("ix_jobs_runnable", "status", "held", "lease_expires"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(40), nullable=False, unique=True),  # at most one refund per job
    Column("payment_id", String(40), nullable=False),
    Column("payer", String(64), nullable=False),
    Column("method", String(16), nullable=False),
    Column("micros", BigInteger, nullable=False),
    Column("network", String(64)),
    Column("asset", String(64)),
    Column("amount", String(80)),
    Column("state", String(16), nullable=False),
    Column("tx_hash", String(128)),  # a Solana signature is up to 88 characters
    Column("raw_tx", Text),
    Column("reason", String(120)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_refunds_state", "state"),
)

credits = Table(
    "credits",
    metadata,
    Column("payer", String(64), primary_key=True),
    Column("balance_micros", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

credit_entries = Table(
    "credit_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payer", String(64), nullable=False),
    Column("delta_micros", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),  # refund | spend
    Column("job_id", String(40)),
    Column("payment_id", String(40)),
    Column("created_at", Float, nullable=False),
    Index("ix_credit_entries_payer", "payer"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # also the `webhook-id` header: receivers dedupe on it
    Column("job_id", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("job_id", "event", name="uq_webhook_job_event"),
    Index("ix_webhook_due", "state", "next_at"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(40), nullable=False, unique=True),  # the paid upload slot (one per payment)
    Column("payer", String(64), nullable=False),
    Column("pathname", String(300), nullable=False, unique=True),  # the blob key it may be written to
    Column("content_type", String(80), nullable=False),
    Column("max_bytes", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # issued | uploaded | confirmed
    Column("size", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
