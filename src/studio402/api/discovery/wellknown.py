"""/.well-known/x402: every paid resource with its offers (at the lowest price) and input schema."""

from __future__ import annotations

from typing import Any

from studio402.api.discovery.prices import price_range
from studio402.api.discovery.rails import mpp_offers
from studio402.money import format_usd
from studio402.wiring import Wiring


def render_well_known(svc: Wiring) -> dict[str, Any]:
    markup = svc.settings.pricing.markup_bps
    items = []
    for route in (*svc.catalog, svc.catalog.upload):
        resource = svc.paid.resource(route)
        prices = price_range(route, markup)
        items.append(
            {
                "resource": resource.url,
                "type": "http",
                "method": "POST",
                "x402Version": 2,
                "description": resource.description,
                "mimeType": resource.mime_type,
                "accepts": [r.to_v2() for r in svc.engine.requirements(prices.low)],
                "mpp": mpp_offers(svc, prices.low),
                "price": {
                    "currency": "USD",
                    "min": format_usd(prices.low),
                    "max": format_usd(prices.high),
                    "rule": route.price.describe(),
                },
                "input": {
                    "type": "http",
                    "method": "POST",
                    "bodyType": "json",
                    "schema": route.input.model_json_schema(mode="validation"),
                },
                "quote": f"{svc.settings.public_url}/api/quote/{route.model}/{route.operation}",
            }
        )
    return {
        "x402Version": 2,
        "service": {
            "name": "studio402",
            "url": svc.settings.public_url,
            "openapi": f"{svc.settings.public_url}/api/openapi.json",
        },
        "resources": [item["resource"] for item in items],
        "items": items,
    }
