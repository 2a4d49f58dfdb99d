"""GET /metrics: Prometheus text format, every figure derived from the database at scrape time (so all
serve and worker processes agree, and counters survive restarts: they are totals of stored rows)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from studio402.api.deps import wiring
from studio402.api.ops.bearer import require_bearer
from studio402.db.engine import Database
from studio402.db.ops_stats import LATENCY_BUCKETS, OpsStats, read_stats
from studio402.errors import StorageError
from studio402.wiring import Wiring

router = APIRouter()


class _Snapshot(Collector):
    def __init__(self, stats: OpsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats
        paid = CounterMetricFamily(
            "studio402_paid_requests", "Payments claimed in the ledger", labels=["network"]
        )
        by_network: dict[str, int] = {}
        for (network, _state), n in s.payments.items():
            by_network[network] = by_network.get(network, 0) + n
        for network, n in sorted(by_network.items()):
            paid.add_metric([network], n)
        yield paid
        settlements = GaugeMetricFamily(
            "studio402_settlements", "Payments by settlement outcome", labels=["network", "outcome"]
        )
        for (network, state), n in sorted(s.payments.items()):
            settlements.add_metric([network, state], n)
        yield settlements
        revenue = CounterMetricFamily(
            "studio402_settled_micros", "Settled revenue in micro-dollars", labels=["network"]
        )
        for network, micros in sorted(s.settled_micros.items()):
            revenue.add_metric([network], micros)
        yield revenue
        job_gauge = GaugeMetricFamily(
            "studio402_jobs", "Jobs by status and backend", labels=["status", "backend"]
        )
        for (status, backend), n in sorted(s.jobs.items()):
            job_gauge.add_metric([status, backend], n)
        yield job_gauge
        latency = HistogramMetricFamily(
            "studio402_upstream_latency_seconds",
            "Finished jobs: start to end, per backend",
            labels=["backend"],
        )
        for backend, h in sorted(s.latency.items()):
            buckets = [(str(b), c) for b, c in zip(LATENCY_BUCKETS, h.buckets, strict=True)]
            latency.add_metric([backend], [*buckets, ("+Inf", h.count)], h.total_seconds)
        yield latency
        refunds = GaugeMetricFamily(
            "studio402_refunds", "Refunds by method and state", labels=["method", "state"]
        )
        refunded = GaugeMetricFamily(
            "studio402_refunds_micros", "Refunded amounts in micro-dollars", labels=["method", "state"]
        )
        for (method, state), (n, micros) in sorted(s.refunds.items()):
            refunds.add_metric([method, state], n)
            refunded.add_metric([method, state], micros)
        yield refunds
        yield refunded
        yield GaugeMetricFamily(
            "studio402_reconciler_lag_seconds",
            "Age of the oldest payment not yet settled or failed (0: none open)",
            value=s.oldest_unsettled_age,
        )
        yield GaugeMetricFamily(
            "studio402_refund_lag_seconds",
            "Age of the oldest refund not yet done (0: none open)",
            value=s.oldest_open_refund_age,
        )


def database(w: Wiring) -> Database:
    if w.db is None:  # before start(): nothing to report yet
        raise StorageError("the database is not open yet", code="not_ready")
    return w.db


def render(stats: OpsStats) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))
    return generate_latest(registry)


class RenderCache:
    """The last rendering, reused for `ttl` seconds, and one database read for concurrent scrapes: /metrics
    can be hammered by anyone who reaches it, and each fresh rendering reads every table."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._body = b""
        self._at: float | None = None

    async def get(self, db: Database) -> bytes:
        async with self._lock:
            if self._at is None or self._clock() - self._at >= self._ttl:
                self._body = render(await read_stats(db))
                self._at = self._clock()
            return self._body


def _cache(request: Request, ttl: float) -> RenderCache:
    cache: RenderCache | None = getattr(request.app.state, "metrics_cache", None)
    if cache is None:
        cache = request.app.state.metrics_cache = RenderCache(ttl)
    return cache


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    w = wiring(request)
    admin = w.settings.admin
    if admin.metrics_token is not None and admin.metrics_token.get_secret_value():
        require_bearer(request, admin.metrics_token.get_secret_value(), who="metrics")
    body = await _cache(request, admin.metrics_cache_seconds).get(database(w))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
