"""Operator figures read from the database: what /metrics and the /admin dashboard show.

Everything is derived from the tables at read time (grouped counts and sums), so every serve and worker
process reports the same numbers whichever process did the work, and a restart loses nothing."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, case, func, select

from studio402.db.engine import Database
from studio402.db.schema import jobs, payments, refunds

# Upper bounds (seconds) of the upstream latency histogram: a job's start to its end, per backend.
LATENCY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
UNSETTLED = ("reserved", "settling")
REFUND_OPEN = ("pending", "sending", "failed")


@dataclass
class Latency:
    """Cumulative histogram of finished jobs' durations for one backend."""

    buckets: list[int]  # counts of durations <= LATENCY_BUCKETS[i]
    count: int
    total_seconds: float


@dataclass
class OpsStats:
    payments: dict[tuple[str, str], int] = field(default_factory=dict)  # (network, state) -> count
    settled_micros: dict[str, int] = field(default_factory=dict)  # network -> sum
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, backend) -> count
    latency: dict[str, Latency] = field(default_factory=dict)  # backend -> histogram
    refunds: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (method, state) -> n, µ$
    oldest_unsettled_age: float = 0.0  # seconds: the reconciler's lag on payments
    oldest_open_refund_age: float = 0.0  # seconds: ... and on refunds


def _latency(conn: Connection) -> dict[str, Latency]:
    duration = jobs.c.finished_at - jobs.c.started_at
    columns = [func.sum(case((duration <= b, 1), else_=0)) for b in LATENCY_BUCKETS]
    rows = conn.execute(
        select(jobs.c.backend, func.count(), func.sum(duration), *columns)
        .where(jobs.c.started_at.is_not(None), jobs.c.finished_at.is_not(None))
        .group_by(jobs.c.backend)
    )
    return {
        str(r[0] or "none"): Latency([int(v or 0) for v in r[3:]], int(r[1]), float(r[2] or 0)) for r in rows
    }


def _read(conn: Connection, now: float) -> OpsStats:
    stats = OpsStats()
    for network, state, n, micros in conn.execute(
        select(payments.c.network, payments.c.state, func.count(), func.sum(payments.c.micros)).group_by(
            payments.c.network, payments.c.state
        )
    ):
        stats.payments[(network, state)] = int(n)
        if state == "settled":
            stats.settled_micros[network] = int(micros or 0)
    for status, backend, n in conn.execute(
        select(jobs.c.status, jobs.c.backend, func.count()).group_by(jobs.c.status, jobs.c.backend)
    ):
        stats.jobs[(status, backend or "none")] = int(n)
    stats.latency = _latency(conn)
    for method, state, n, micros in conn.execute(
        select(refunds.c.method, refunds.c.state, func.count(), func.sum(refunds.c.micros)).group_by(
            refunds.c.method, refunds.c.state
        )
    ):
        stats.refunds[(method, state)] = (int(n), int(micros or 0))
    oldest_payment = conn.execute(
        select(func.min(payments.c.updated_at)).where(payments.c.state.in_(UNSETTLED))
    ).scalar()
    oldest_refund = conn.execute(
        select(func.min(refunds.c.updated_at)).where(refunds.c.state.in_(REFUND_OPEN))
    ).scalar()
    stats.oldest_unsettled_age = max(0.0, now - oldest_payment) if oldest_payment else 0.0
    stats.oldest_open_refund_age = max(0.0, now - oldest_refund) if oldest_refund else 0.0
    return stats


async def read_stats(db: Database, now: float | None = None) -> OpsStats:
    moment = time.time() if now is None else now
    return await db.read(lambda conn: _read(conn, moment))


@dataclass
class RevenueRow:
    day: str  # YYYY-MM-DD (UTC)
    model: str
    payments: int
    micros: int


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


async def revenue_by_model_and_day(db: Database, since: float) -> list[RevenueRow]:
    """Settled payments since `since`, summed per UTC day and model (the route's first segment)."""

    def op(conn: Connection) -> list[RevenueRow]:
        rows = conn.execute(
            select(payments.c.route, payments.c.micros, payments.c.created_at).where(
                payments.c.state == "settled", payments.c.created_at >= since
            )
        )
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for route, micros, created in rows:
            cell = sums[(_day(created), route.split("/", 1)[0])]
            cell[0] += 1
            cell[1] += int(micros)
        return [RevenueRow(d, m, n, s) for (d, m), (n, s) in sorted(sums.items())]

    return await db.read(op)


@dataclass
class RecentRefund:
    job_id: str
    payer: str
    method: str
    state: str
    micros: int
    tx_hash: str | None
    created_at: float


async def recent_refunds(db: Database, limit: int = 20) -> list[RecentRefund]:
    def op(conn: Connection) -> list[RecentRefund]:
        rows = conn.execute(
            select(
                refunds.c.job_id,
                refunds.c.payer,
                refunds.c.method,
                refunds.c.state,
                refunds.c.micros,
                refunds.c.tx_hash,
                refunds.c.created_at,
            )
            .order_by(refunds.c.created_at.desc())
            .limit(limit)
        )
        return [RecentRefund(*r) for r in rows]

    return await db.read(op)


@dataclass
class BackendRecent:
    backend: str
    complete: int
    failed: int
    mean_latency_seconds: float | None


async def backends_since(db: Database, since: float) -> list[BackendRecent]:
    """Per backend, the jobs that ended since `since`: how many completed, failed, and their mean duration
    (what "healthy now" is judged on, unlike all-time counts)."""

    def op(conn: Connection) -> list[BackendRecent]:
        duration = jobs.c.finished_at - jobs.c.started_at
        rows = conn.execute(
            select(
                jobs.c.backend,
                func.sum(case((jobs.c.status == "complete", 1), else_=0)),
                func.sum(case((jobs.c.status == "failed", 1), else_=0)),
                func.avg(duration),
            )
            .where(jobs.c.finished_at >= since, jobs.c.backend.is_not(None))
            .group_by(jobs.c.backend)
        )
        return [
            BackendRecent(str(b), int(c or 0), int(f or 0), float(avg) if avg is not None else None)
            for b, c, f, avg in rows
        ]

    return await db.read(op)
