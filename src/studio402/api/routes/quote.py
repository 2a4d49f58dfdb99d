"""POST /api/quote/{model}/{operation}: the price of a body, without charging."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from studio402.api.body import read_json
from studio402.api.deps import services
from studio402.api.routes.paid import resolve_media
from studio402.money import format_usd

router = APIRouter()


@router.post("/api/quote/{model}/{operation}", summary="Price of a request, without charging")
async def quote(model: str, operation: str, request: Request) -> dict[str, Any]:
    svc = services(request)
    route = svc.catalog.get(model, operation)
    validated = await resolve_media(
        svc, request, svc.catalog.validate(route, await read_json(request)), quote=True
    )
    micros = svc.catalog.quote(validated, svc.settings.pricing.markup_bps)
    return {
        "model": route.model,
        "operation": route.operation,
        "usd": format_usd(micros),
        "micros": str(micros),
        "rule": route.price.describe(),
        "request": validated.canonical,
        "accepts": [r.to_v2() for r in svc.engine.requirements(micros)],
    }
