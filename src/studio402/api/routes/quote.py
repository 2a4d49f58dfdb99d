"""POST /api/quote/{model}/{operation}: the price of a body, without charging."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from studio402.api.body import read_json
from studio402.api.deps import wiring
from studio402.api.routes.paid import paid_call
from studio402.money import format_usd

router = APIRouter()


@router.post("/api/quote/{model}/{operation}", summary="Price of a request, without charging")
async def quote(model: str, operation: str, request: Request) -> dict[str, Any]:
    paid = wiring(request).paid
    route = paid.route(model, operation)
    payload = await read_json(request)
    quoted = await paid.quote(paid_call(request), route, payload)
    return {
        "model": route.model,
        "operation": route.operation,
        "usd": format_usd(quoted.micros),
        "micros": str(quoted.micros),
        "rule": route.price.describe(),
        "request": quoted.request.canonical,
        "accepts": [r.to_v2() for r in quoted.accepts],
    }
