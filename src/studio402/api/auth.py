"""SIGN-IN-WITH-X at the edge: the wallet behind a request, or a 402 the official clients answer alone."""

from __future__ import annotations

from starlette.requests import Request

from studio402.auth.siwx import SIWX_HEADER
from studio402.errors import AuthError
from studio402.wiring import Wiring


def public_request_url(svc: Wiring, request: Request) -> str:
    """The URL as the client addressed it, rebuilt from our configured public URL (never from Host)."""
    return svc.siwx.url_for(request.url.path, request.url.query)


async def wallet(svc: Wiring, request: Request) -> str:
    url = public_request_url(svc, request)
    try:
        return await svc.siwx.verify(request.headers.get(SIWX_HEADER), request_url=url)
    except AuthError as exc:
        exc.challenge = svc.siwx.payment_required_body(url, error=exc.code)
        raise
