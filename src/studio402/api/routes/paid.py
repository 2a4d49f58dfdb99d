"""The paid half of a POST shared by generate and upload: pay (or spend credit) and answer with the job;
and the unpaid half's limit: remote media downloads for requests that pay nothing (429 per client)."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from studio402.auth.siwx import SIWX_HEADER, parse_header
from studio402.catalog import ValidatedRequest
from studio402.errors import AuthError, PaymentError, Studio402Error
from studio402.payments import x402
from studio402.payments.methods.tempo_charge import receipt_header
from studio402.payments.paid import Paid
from studio402.services import Services

# Headers that may pay (x402 v2 and v1, an MPP-style `Authorization: Payment`, a credit sign-in).
_PAYING_HEADERS = (x402.PAYMENT_SIGNATURE, x402.X_PAYMENT, SIWX_HEADER)


def carries_payment(request: Request) -> bool:
    """A payment or sign-in is attached; whether it pays is known only after the quote."""
    auth = request.headers.get("authorization", "")
    return auth[:8].lower() == "payment " or any(h in request.headers for h in _PAYING_HEADERS)


async def resolve_media(
    svc: Services, request: Request, validated: ValidatedRequest, *, quote: bool = False
) -> ValidatedRequest:
    """Fetch and verify the media inputs. An unpaid request spends a token of its client's bucket per
    remote download up front (429 when empty). One carrying a payment only needs a token left, and is
    counted afterwards if it does not pay (bad media here, a refused payment in `charge`): a made-up
    header does not lift the limit, and a paid retry usually downloads nothing (its 402 attempt did, and
    the URL is cached)."""
    fetches = svc.media_fetches(validated)
    if fetches and svc.unpaid_fetches.enabled:
        if quote or not carries_payment(request):
            svc.unpaid_fetches.take(_client(request), fetches)
        else:
            svc.unpaid_fetches.check(_client(request))
            request.state.unpaid_fetches = fetches
    try:
        resolved = await svc.resolve_media(validated)
        svc.check_servable(resolved)
        return resolved
    except Studio402Error:
        _count_unpaid(svc, request)
        raise


async def charge(svc: Services, request: Request, validated: ValidatedRequest, micros: int) -> Paid:
    """Settle the payment sent with the request, or spend the signed-in payer's credit, or raise the 402."""
    try:
        return await _charge(svc, request, validated, micros)
    except (PaymentError, AuthError):
        _count_unpaid(svc, request)
        raise


def _count_unpaid(svc: Services, request: Request) -> None:
    """A request whose downloads were not counted up front (it carried a payment) did not pay after all."""
    fetches = getattr(request.state, "unpaid_fetches", 0)
    if fetches:
        svc.unpaid_fetches.spend(_client(request), fetches)


def _client(request: Request) -> str:
    # The peer address: X-Forwarded-For is anyone's to write (a trusted proxy's is applied by uvicorn).
    return request.client.host if request.client else "unknown"


async def _charge(svc: Services, request: Request, validated: ValidatedRequest, micros: int) -> Paid:
    # Every 402 this request gets (a refused payment too) binds its MPP challenges to this body.
    resource = replace(svc.resource(validated.route), body_digest=_body_digest(request))
    authorization = request.headers.get("authorization", "")
    if authorization[:8].lower() == "payment " and svc.tempo is not None:
        body = getattr(request.state, "raw_body", b"")
        payload = svc.tempo.method.to_payload(authorization, resource, micros, body)
        return await svc.engine.pay_payload(payload, validated, micros, resource)
    header = request.headers.get(x402.PAYMENT_SIGNATURE)
    if header is not None:
        return await svc.engine.pay(header, validated, micros, resource)
    legacy = request.headers.get(x402.X_PAYMENT)
    if legacy is not None:
        return await svc.engine.pay(legacy, validated, micros, resource, v1=True)
    sign_in = request.headers.get(SIWX_HEADER)
    if sign_in is not None and svc.credit_enabled:
        payer = await svc.siwx.verify(sign_in, request_url=resource.url)
        paid = await svc.engine.pay_with_credit(payer, parse_header(sign_in).nonce, validated, micros)
        if paid is not None:
            return paid
        raise svc.engine.payment_required(
            resource,
            micros,
            error="insufficient_credit",
            detail="Your credit does not cover this request; pay instead.",
            body_digest=_body_digest(request),
        )
    raise svc.engine.payment_required(resource, micros, body_digest=_body_digest(request))


def _body_digest(request: Request) -> str:
    return content_digest(getattr(request.state, "raw_body", b""))


def content_digest(body: bytes) -> str:
    """RFC 9530 `Content-Digest` of the request body, which MPP challenges bind (`digest=`)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


TEMPO_PREFIX = "tempo:"  # the ledger networks of MPP charges on Tempo (payments/methods/tempo_method.py)


def paid_response(paid: Paid, body: dict[str, Any], *, v1: bool = False) -> JSONResponse:
    """200 with the x402 receipt, or 202 while the settlement is still pending (never a 402 then).
    The answer that created a job with a `callBackUrl` carries its webhook secret (sent only this once)."""
    headers = {"Cache-Control": "private"}
    if paid.webhook_secret is not None:
        body = {**body, "webhookSecret": paid.webhook_secret}
    if paid.settled and paid.network.startswith(TEMPO_PREFIX):  # MPP: its own receipt header
        headers["Payment-Receipt"] = receipt_header(paid.tx_hash or "", now=time.time())
        return JSONResponse(body, headers=headers)
    if paid.settled:
        receipt = paid.settle_response()
        if v1:
            headers[x402.X_PAYMENT_RESPONSE] = x402.encode(
                {**receipt, "network": x402.v1_network(paid.network)}
            )
        else:
            headers[x402.PAYMENT_RESPONSE] = x402.encode(receipt)
        return JSONResponse(body, headers=headers)
    body = {**body, "payment": {"status": "settling", "transaction": paid.tx_hash}}
    return JSONResponse(body, status_code=202, headers=headers)
