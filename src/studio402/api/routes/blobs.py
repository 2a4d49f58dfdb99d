"""Stored files under signed, expiring URLs (range requests and content types from the store)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from studio402.api.deps import wiring
from studio402.errors import AccessDenied, NotFound
from studio402.storage.local import LocalBlobStore

router = APIRouter()


@router.api_route("/blobs/{key:path}", methods=["GET", "HEAD"], include_in_schema=False, response_model=None)
async def blob(key: str, request: Request, e: str = "", s: str = "") -> Response:
    svc = wiring(request)
    if not svc.signer.well_formed(e, s):
        raise AccessDenied("this link's signature is malformed", code="invalid_signature")
    if not svc.signer.verify(key, e, s):
        raise AccessDenied(
            "this link is invalid or has expired; poll the job for a fresh one", code="url_expired"
        )
    if not isinstance(svc.blobs, LocalBlobStore):  # a bucket serves its own files
        return RedirectResponse(svc.blobs.url(key, svc.settings.storage.url_ttl_seconds), status_code=307)
    info = await svc.blobs.stat(key)
    if info is None:
        raise NotFound("no such file")
    return FileResponse(
        svc.blobs.path(key), media_type=info.content_type, headers={"Cache-Control": "private, max-age=300"}
    )
