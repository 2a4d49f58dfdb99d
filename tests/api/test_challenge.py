"""Every route answers: invalid body -> 400 listing the fields (no challenge); valid body -> a 402 the
official x402 SDK parses, with an amount inside the spec's range."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from x402.schemas import PaymentRequired

from studio402.catalog import CATALOG, Route
from tests.catalog_samples import enum_fields, valid_body
from tests.conftest import STATIC_OFFER
from tests.spec_prices import PER_CALL, PER_SECOND

ROUTES = [*CATALOG, CATALOG.upload]


def decode_challenge(response: httpx.Response) -> PaymentRequired:
    raw = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
    return PaymentRequired.model_validate(raw)


def invalid_bodies(route: Route) -> list[tuple[str, dict[str, Any] | list[Any], set[str]]]:
    """(label, body, fields the 400 must name)."""
    body = valid_body(route)
    cases: list[tuple[str, dict[str, Any] | list[Any], set[str]]] = [
        ("unknown field", {**body, "colour": "red"}, {"colour"}),
        ("not an object", [body], {"body"}),
    ]
    for name in body:
        cases.append((f"missing {name}", {k: v for k, v in body.items() if k != name}, {name}))
        cases.append((f"{name} wrong type", {**body, name: {"nested": True}}, {name}))
    for name in enum_fields(route):
        cases.append((f"bad enum {name}", {**body, name: "not-a-valid-choice"}, {name}))
    two_bad = {**body, "colour": "red"}
    for name in list(enum_fields(route))[:2]:
        two_bad[name] = "nope"
    cases.append(("every invalid field listed", two_bad, {"colour", *list(enum_fields(route))[:2]}))
    return cases


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
async def test_valid_body_gets_a_402_the_sdk_parses(client: httpx.AsyncClient, route: Route) -> None:
    response = await client.post(route.path, json=valid_body(route))
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["code"] == "payment_required"
    challenge = decode_challenge(response)
    assert challenge.x402_version == 2
    assert challenge.resource is not None
    assert challenge.resource.url == "http://127.0.0.1:8402" + route.path
    [accept] = challenge.accepts
    assert accept.scheme == "exact"
    assert accept.network == STATIC_OFFER.network
    assert accept.asset == STATIC_OFFER.asset.address
    assert accept.pay_to == STATIC_OFFER.pay_to
    assert accept.max_timeout_seconds == 300
    assert accept.extra == {"name": "USD Coin", "version": "2"}
    amount = int(accept.amount)
    if route.key in PER_SECOND:
        low, high = PER_SECOND[route.key]
        seconds = int(CATALOG.validate(route, valid_body(route)).canonical["duration"])
        assert low * seconds <= amount <= high * seconds
    else:
        low, high = PER_CALL[route.key]
        assert low <= amount <= high


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
async def test_invalid_bodies_get_400_naming_every_bad_field(client: httpx.AsyncClient, route: Route) -> None:
    for label, body, fields in invalid_bodies(route):
        response = await client.post(route.path, json=body)
        assert response.status_code == 400, label
        assert "PAYMENT-REQUIRED" not in response.headers, label
        problem = response.json()
        assert problem["code"] == "validation_failed", label
        assert response.headers["content-type"] == "application/problem+json"
        named = {e["field"].split(".")[0] for e in problem["errors"]}
        assert fields <= named, (label, named)


async def test_the_same_body_always_gets_the_same_amount(client: httpx.AsyncClient) -> None:
    route = CATALOG.get("seedance", "t2v")
    bodies = [
        {"prompt": "waves", "duration": "10", "outputResolution": "1080p"},
        {"outputResolution": "1080p", "duration": 10, "prompt": "waves"},
        {"prompt": "waves", "seconds": 10, "resolution": "1080p"},
    ]
    amounts = set()
    for body in bodies * 2:
        response = await client.post(route.path, json=body)
        amounts.add(decode_challenge(response).accepts[0].amount)
    assert amounts == {str(10 * 420_000)}


async def test_garbage_never_gets_a_500(client: httpx.AsyncClient) -> None:
    path = CATALOG.get("nano-banana", "generate").path
    for raw in (b"", b"{", b"null", b"[]", b'"x"', b"1e999999", b'{"prompt": "\\ud800"}', b"[" * 100_000):
        response = await client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, raw[:20]
        assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/generate/dall-e-3/generate", json={"prompt": "x"})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_route"


async def test_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    path = CATALOG.get("nano-banana", "edit").path
    big = b'{"prompt": "x", "images": ["' + b"A" * (49 * 1024 * 1024) + b'"]}'
    response = await client.post(path, content=big)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_quote_prices_without_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/quote/veo-3.1/generate", json={"prompt": "x", "durationSeconds": 6})
    assert response.status_code == 200
    assert "PAYMENT-REQUIRED" not in response.headers
    body = response.json()
    assert body["micros"] == "2400000" and body["usd"] == "2.40"
    assert body["accepts"][0]["amount"] == "2400000"
    bad = await client.post("/api/quote/veo-3.1/generate", json={"prompt": "x", "durationSeconds": 5})
    assert bad.status_code == 400
