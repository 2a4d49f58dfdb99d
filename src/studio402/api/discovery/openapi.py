"""OpenAPI 3.1: FastAPI's document for the plain routes, plus one operation per catalog route with its
input schema, its price range and payment info (`x-payment`, and MPP's `x-payment-info`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from studio402 import __version__
from studio402.api.discovery.prices import price_range
from studio402.api.discovery.rails import mpp_offers
from studio402.catalog import Kind, Route
from studio402.money import format_usd
from studio402.payments import x402
from studio402.wiring import Wiring

PROBLEM = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine-readable `code`.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_JOB_CREATED: dict[str, Any] = {
    "type": "object",
    "required": ["jobId", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["sora-2-generate"]},
        "jobId": {"type": "string"},
        "status": {"type": "string", "enum": ["pending"]},
        "success": {"type": "boolean"},
    },
}
DESCRIPTION = (
    "AI image and video generation sold per call with HTTP 402 micropayments (x402 v2, USDC EIP-3009), "
    "no API keys. POST a generate route without payment to get a 402 whose base64 `PAYMENT-REQUIRED` header "
    'lists the offers; sign one and POST again with `PAYMENT-SIGNATURE` to get `{jobId, status: "pending"}`; '
    "poll `GET /api/jobs/{jobId}` signed with your wallet (`SIGN-IN-WITH-X`)."
)


def build_openapi(app: FastAPI, svc: Wiring) -> dict[str, Any]:
    doc = get_openapi(
        title="studio402",
        version=__version__,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        routes=app.routes,
    )
    doc["servers"] = [{"url": svc.settings.public_url}]
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    schemas["JobCreated"] = _JOB_CREATED
    paths = doc.setdefault("paths", {})
    for route in (*svc.catalog, svc.catalog.upload):
        schemas[route.input.__name__] = _input_schema(route, schemas)
        paths[route.path] = {"post": _operation(route, svc)}
    return doc


def _input_schema(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = route.input.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    schemas.update(schema.pop("$defs", {}))
    if route.input.ALIASES:
        aliases = ", ".join(f"`{a}` for `{c}`" for a, c in route.input.ALIASES.items())
        schema["description"] = f"Also accepted: {aliases}."
    return schema


def _operation(route: Route, svc: Wiring) -> dict[str, Any]:
    prices = price_range(route, svc.settings.pricing.markup_bps)
    requirement_min = [r.to_v2() for r in svc.engine.requirements(prices.low)]
    ok_schema = _JOB_CREATED_REF if route.kind is not Kind.UPLOAD else {"type": "object"}
    return {
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{route.kind}_{route.model}_{route.operation}").strip(
            "_"
        ),
        "summary": route.title,
        "description": f"{route.summary} Price: {prices.label_with_rate}. Typical time: {route.eta}. "
        f"Rule: {route.price.describe()}.",
        "tags": [route.kind.value],
        "parameters": [
            {
                "name": x402.PAYMENT_SIGNATURE,
                "in": "header",
                "required": False,
                "description": "base64 x402 v2 PaymentPayload answering the 402.",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{route.input.__name__}"}}
            },
        },
        "responses": {
            "200": {
                "description": "Paid: the job was created.",
                "headers": {
                    x402.PAYMENT_RESPONSE: {
                        "schema": {"type": "string"},
                        "description": "base64 x402 SettleResponse",
                    }
                },
                "content": {"application/json": {"schema": ok_schema}},
            },
            "400": {"description": "Invalid input; nothing charged.", "content": _problem()},
            "402": {
                "description": "Payment required: offers in the base64 PAYMENT-REQUIRED header.",
                "headers": {x402.PAYMENT_REQUIRED: {"schema": {"type": "string"}}},
                "content": _problem(),
            },
            "409": {
                "description": "This payment was already used for another request.",
                "content": _problem(),
            },
        },
        "x-payment": {
            "protocol": "x402",
            "x402Version": 2,
            "scheme": "exact",
            "dynamic": prices.low != prices.high,
            "price": {
                "currency": "USD",
                "min": format_usd(prices.low),
                "max": format_usd(prices.high),
                "perSecond": None
                if prices.per_second is None
                else [format_usd(v) for v in prices.per_second],
                "rule": route.price.describe(),
            },
            "accepts": requirement_min,
        },
        "x-payment-info": {
            "offers": [
                {
                    "intent": "charge",
                    "method": "x402-exact",
                    "network": r["network"],
                    "currency": r["asset"],
                    "amount": None if prices.low != prices.high else r["amount"],
                    "description": route.title,
                }
                for r in requirement_min
            ]
            + mpp_offers(svc, None if prices.low != prices.high else prices.low)
        },
    }


_JOB_CREATED_REF = {"$ref": "#/components/schemas/JobCreated"}


def _problem() -> dict[str, Any]:
    return {"application/problem+json": {"schema": PROBLEM}}
