"""POST /api/upload: pay for an upload slot (step 1 of the upload flow)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from studio402.api.body import read_json
from studio402.api.deps import services
from studio402.payments import x402

router = APIRouter()


@router.post("/api/upload", include_in_schema=False)
async def upload_token(request: Request) -> Response:
    svc = services(request)
    route = svc.catalog.upload
    validated = svc.catalog.validate(route, await read_json(request))
    micros = svc.catalog.quote(validated, svc.settings.pricing.markup_bps)
    if request.headers.get(x402.PAYMENT_SIGNATURE) is None:
        raise svc.engine.payment_required(svc.resource(route), micros)
    raise svc.engine.payment_required(svc.resource(route), micros, error="unsupported_scheme")
