"""POST /api/generate/{model}/{operation}: validate, quote, then 402 or pay and create the job."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from studio402.api.body import read_json
from studio402.api.deps import wiring
from studio402.api.routes.paid import paid_call, paid_response

router = APIRouter()


@router.post("/api/generate/{model}/{operation}", include_in_schema=False)
async def generate(model: str, operation: str, request: Request) -> JSONResponse:
    w = wiring(request)
    route = w.paid.route(model, operation)  # an unknown route is a 404 before the body is read
    payload = await read_json(request)
    purchase = await w.paid.buy(paid_call(request), route, payload)
    job_id = purchase.paid.job_id
    body = {
        "type": route.job_type,
        "jobId": job_id,
        "status": "pending",
        "success": True,
        "pollUrl": f"{w.settings.public_url}/api/jobs/{job_id}",
        "pollIntervalSeconds": route.poll_seconds,
    }
    return paid_response(purchase.paid, body, v1=purchase.v1)
