"""The 3-step upload (spec "File Upload"): pay for a slot, PUT the bytes with the client token, confirm
with SIGN-IN-WITH-X. The blobUrl is then usable in any media field of a generate request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio402.api.auth import wallet
from studio402.api.body import read_bytes, read_json
from studio402.api.deps import wiring
from studio402.api.routes.paid import paid_call, paid_response
from studio402.errors import TokenError, ValidationFailed, field_errors_from_pydantic

router = APIRouter(tags=["upload"])


@router.post("/api/upload", include_in_schema=False)
async def upload_token(request: Request) -> JSONResponse:
    svc = wiring(request)
    payload = await read_json(request)
    purchase, upload = await svc.paid.buy_upload(paid_call(request), payload)
    paid = purchase.paid
    upload_url, upload_headers = svc.uploads.target(upload)
    body: dict[str, Any] = {
        "uploadId": upload.id,
        "clientToken": svc.uploads.token(upload),
        "pathname": upload.pathname,
        "expiresAt": datetime.fromtimestamp(upload.expires_at, UTC).isoformat().replace("+00:00", "Z"),
        "uploadUrl": upload_url,
        "uploadHeaders": upload_headers,  # send exactly these with the PUT
        "blobUrl": svc.uploads.blob_url(upload.pathname),  # what step 3 confirms
        "contentType": upload.content_type,
        "maxBytes": upload.max_bytes,
        "jobId": paid.job_id,
    }
    return paid_response(paid, body, v1=purchase.v1)


@router.put("/api/upload/blob", summary="Step 2: upload the bytes (Bearer client token)")
async def upload_put(request: Request, pathname: str = Query(..., max_length=300)) -> JSONResponse:
    svc = wiring(request)
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise TokenError(
            "send the clientToken as `authorization: Bearer <token>`", code="upload_token_missing"
        )
    upload_id, limit = svc.uploads.check_put(
        auth[7:].strip(), pathname, request.headers.get("x-content-type")
    )
    upload = await svc.uploads.put(upload_id, await read_bytes(request, limit))
    return JSONResponse(
        {
            "url": svc.uploads.blob_url(upload.pathname),
            "pathname": upload.pathname,
            "contentType": upload.content_type,
            "size": upload.size,
        }
    )


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uploadId: str = Field(max_length=64)
    blobUrl: str = Field(max_length=2048)


@router.post("/api/upload/confirm", summary="Step 3: confirm the upload (SIGN-IN-WITH-X, no payment)")
async def upload_confirm(request: Request) -> JSONResponse:
    svc = wiring(request)
    payer = await wallet(svc, request)
    try:
        body = ConfirmBody.model_validate(await read_json(request))
    except ValidationError as exc:
        raise ValidationFailed(field_errors_from_pydantic(exc.errors())) from None
    upload = await svc.uploads.confirm(body.uploadId, body.blobUrl, payer)
    return JSONResponse(
        {
            "success": True,
            "upload": {
                "id": upload.id,
                "blobUrl": svc.uploads.blob_url(upload.pathname),
                "contentType": upload.content_type,
                "size": upload.size,
            },
        }
    )
