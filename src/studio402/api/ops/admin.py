"""The operator dashboard: /admin (the page) and /admin/api/* (JSON), behind `[admin] token`.

No token configured: every /admin path is a 404, as if the dashboard did not exist. The JSON endpoints take
`Authorization: Bearer <token>`, compared in constant time; a missing or wrong one is a 401 problem."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from studio402.api.deps import wiring
from studio402.api.ops.bearer import require_bearer
from studio402.api.ops.metrics import database
from studio402.api.ops.static import STATIC_DIR
from studio402.db.ops_stats import backends_since, read_stats, recent_refunds, revenue_by_model_and_day
from studio402.errors import NotFound
from studio402.wiring import Wiring

router = APIRouter(include_in_schema=False)
AUDIT_TTL_SECONDS = 60.0  # the audit reads every payment and asks the chain: not on every page refresh
AUDIT_TIMEOUT_SECONDS = 30.0
HEALTH_WINDOW_SECONDS = 3600.0  # a backend's health: the jobs that ended in the last hour


def _configured_token(w: Wiring) -> str:
    token = w.settings.admin.token
    if token is None or not token.get_secret_value():
        raise NotFound("no such page")
    return token.get_secret_value()


def require_admin(request: Request) -> Wiring:
    w = wiring(request)
    require_bearer(request, _configured_token(w), who="admin")
    return w


def _configured_backends(w: Wiring) -> list[str]:
    registry = getattr(w, "registry", None)  # built by start()
    return [b.name for b in registry.all()] if registry is not None else []


@router.get("/admin")
async def admin_page(request: Request) -> FileResponse:
    _configured_token(wiring(request))
    return FileResponse(STATIC_DIR / "admin.html", headers={"Cache-Control": "no-store"})


@router.get("/admin/api/summary")
async def summary(request: Request, days: int = Query(30, ge=1, le=366)) -> JSONResponse:
    w = require_admin(request)
    db = database(w)
    stats = await read_stats(db)
    revenue = await revenue_by_model_and_day(db, time.time() - days * 86_400)
    jobs: dict[str, int] = {}
    backends: dict[str, dict[str, Any]] = {}
    for (status, backend), n in stats.jobs.items():
        jobs[status] = jobs.get(status, 0) + n
        entry = backends.setdefault(backend, {"backend": backend, "jobs": {}})
        entry["jobs"][status] = n
    for name in _configured_backends(w):  # configured but idle backends are listed too
        backends.setdefault(name, {"backend": name, "jobs": {}})
    for backend, h in stats.latency.items():
        entry = backends.setdefault(backend, {"backend": backend, "jobs": {}})
        entry["finished"] = h.count
        entry["meanLatencySeconds"] = round(h.total_seconds / h.count, 3) if h.count else None
    for entry in backends.values():
        entry.update(failureRate=None, healthy=True, lastHour={"complete": 0, "failed": 0})
    for recent in await backends_since(db, time.time() - HEALTH_WINDOW_SECONDS):
        entry = backends.setdefault(recent.backend, {"backend": recent.backend, "jobs": {}})
        ended = recent.complete + recent.failed
        rate = round(recent.failed / ended, 4) if ended else None
        entry.update(
            failureRate=rate,
            healthy=rate is None or rate < 0.5,
            lastHour={"complete": recent.complete, "failed": recent.failed},
        )
    refunds = [
        {"method": m, "state": s, "count": n, "micros": str(micros)}
        for (m, s), (n, micros) in sorted(stats.refunds.items())
    ]
    return JSONResponse(
        {
            "revenue": [{**asdict(r), "micros": str(r.micros)} for r in revenue],
            "revenueMicros": str(sum(r.micros for r in revenue)),
            "jobs": jobs,
            "backends": sorted(backends.values(), key=lambda e: str(e["backend"])),
            "refunds": refunds,
            "recentRefunds": [asdict(r) for r in await recent_refunds(db)],
            "payments": [
                {"network": n, "state": s, "count": c} for (n, s), c in sorted(stats.payments.items())
            ],
            "reconcilerLagSeconds": round(stats.oldest_unsettled_age, 3),
            "refundLagSeconds": round(stats.oldest_open_refund_age, 3),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/admin/api/audit")
async def audit(request: Request) -> JSONResponse:
    """The ledger audit (`studio402 ledger audit`): the ledger balances and the chain agrees."""
    from studio402.cli.ledger import report_json, run_audit  # the CLI's audit, run in-process

    w = require_admin(request)
    cache: dict[str, Any] | None = getattr(request.app.state, "admin_audit", None)
    if cache is None or time.monotonic() - cache["at"] > AUDIT_TTL_SECONDS:
        try:
            report = await asyncio.wait_for(run_audit(w.settings), AUDIT_TIMEOUT_SECONDS)
            body: dict[str, Any] = {"ran": True, **report_json(report)}
        except (TimeoutError, OSError) as exc:
            body = {"ran": False, "ok": None, "error": f"audit could not run: {type(exc).__name__}"}
        cache = {"at": time.monotonic(), "body": {**body, "checkedAt": time.time()}}
        request.app.state.admin_audit = cache
    return JSONResponse(cache["body"], headers={"Cache-Control": "no-store"})
