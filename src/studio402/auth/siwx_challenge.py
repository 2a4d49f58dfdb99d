"""The SIWX side of a 402: the `sign-in-with-x` extension object and the auth-only PaymentRequired.

Shapes follow the official x402 server (`x402.extensions.sign_in_with_x.server`), so the official Python
client and `@x402/fetch` answer the challenge by themselves: they copy `info`, add the address, chain and
signature, and resend the request with a SIGN-IN-WITH-X header.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

SIWX_EXTENSION_KEY = "sign-in-with-x"
X402_VERSION = 2

_STR = {"type": "string"}
_DATE = {"type": "string", "format": "date-time"}
_URI = {"type": "string", "format": "uri"}


def siwx_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of the client's SIGN-IN-WITH-X payload; a fresh object on each call."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "domain": dict(_STR),
            "address": dict(_STR),
            "statement": dict(_STR),
            "uri": dict(_URI),
            "version": dict(_STR),
            "chainId": dict(_STR),
            "type": dict(_STR),
            "nonce": dict(_STR),
            "issuedAt": dict(_DATE),
            "expirationTime": dict(_DATE),
            "notBefore": dict(_DATE),
            "requestId": dict(_STR),
            "resources": {"type": "array", "items": dict(_URI)},
            "signature": dict(_STR),
        },
        "required": [
            "domain",
            "address",
            "uri",
            "version",
            "chainId",
            "type",
            "nonce",
            "issuedAt",
            "signature",
        ],
    }


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and `Z`, as JavaScript's toISOString writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_extension(
    *,
    domain: str,
    uri: str,
    chain_ids: Sequence[int],
    now: datetime,
    solana_networks: Sequence[str] = (),
    ttl_seconds: float,
    statement: str | None = None,
) -> dict[str, Any]:
    """`extensions["sign-in-with-x"]`: a fresh nonce and validity window bound to one resource URI."""
    info: dict[str, Any] = {
        "domain": domain,
        "uri": uri,
        "version": "1",
        "nonce": secrets.token_hex(16),
        "issuedAt": format_time(now),
        "expirationTime": format_time(now + timedelta(seconds=ttl_seconds)),
        "resources": [uri],
    }
    if statement:
        info["statement"] = statement
    chains = [{"chainId": f"eip155:{cid}", "type": "eip191"} for cid in chain_ids]
    chains += [{"chainId": network, "type": "ed25519"} for network in solana_networks]  # Sign in with Solana
    return {
        "info": info,
        "supportedChains": chains,
        "schema": siwx_schema(),
    }


def build_payment_required(
    resource_url: str, extension: dict[str, Any], *, error: str, description: str
) -> dict[str, Any]:
    """The decoded PAYMENT-REQUIRED object of an auth-only route: no payment offers, only SIWX."""
    return {
        "x402Version": X402_VERSION,
        "error": error,
        "resource": {"url": resource_url, "description": description, "mimeType": "application/json"},
        "accepts": [],
        "extensions": {SIWX_EXTENSION_KEY: extension},
    }
