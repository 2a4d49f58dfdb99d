"""CORS for browser apps on other origins (`[server] cors_origins`): preflights answered, the headers x402
and MPP clients send allowed, and the payment headers they must read exposed (a browser hides any
response header not listed in Access-Control-Expose-Headers, e.g. the 402's PAYMENT-REQUIRED)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

EXPOSED = (
    "PAYMENT-REQUIRED",
    "PAYMENT-RESPONSE",
    "WWW-Authenticate",
    "Payment-Receipt",
    "X-PAYMENT-RESPONSE",
    "Retry-After",
    "Location",
)
ALLOWED = (
    "PAYMENT-SIGNATURE",
    "X-PAYMENT",
    "Authorization",
    "SIGN-IN-WITH-X",
    "Content-Type",
    "Accept",
    "Last-Event-ID",
    "X-Content-Type",
    "Idempotency-Key",
)


def install(app: FastAPI, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=list(ALLOWED),
        expose_headers=list(EXPOSED),
        allow_credentials=False,  # payments and sign-ins travel in headers, never in cookies
        max_age=600,
    )
