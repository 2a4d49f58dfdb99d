"""POST /api/generate/{model}/{operation}: validate, quote, then 402 or pay and create the job."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from studio402.api.body import read_json
from studio402.api.deps import services
from studio402.api.routes.paid import charge, paid_response, resolve_media
from studio402.payments import x402

router = APIRouter()


@router.post("/api/generate/{model}/{operation}", include_in_schema=False)
async def generate(model: str, operation: str, request: Request) -> JSONResponse:
    svc = services(request)
    route = svc.catalog.get(model, operation)
    validated = await resolve_media(svc, request, svc.catalog.validate(route, await read_json(request)))
    micros = svc.catalog.quote(validated, svc.settings.pricing.markup_bps)
    paid = await charge(svc, request, validated, micros)
    body = {
        "type": route.job_type,
        "jobId": paid.job_id,
        "status": "pending",
        "success": True,
        "pollUrl": svc.public_url_for(f"/api/jobs/{paid.job_id}"),
        "pollIntervalSeconds": route.poll_seconds,
    }
    return paid_response(paid, body, v1=x402.PAYMENT_SIGNATURE not in request.headers)
