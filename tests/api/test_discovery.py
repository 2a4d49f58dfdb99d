"""Discovery documents are generated from the catalog and stay in sync with it."""

from __future__ import annotations

import httpx
from x402.schemas import PaymentRequirements

from studio402.catalog import CATALOG
from studio402.money import format_usd

ROUTES = [*CATALOG, CATALOG.upload]
BASE = "http://127.0.0.1:8402"


async def test_openapi_has_every_route_with_its_schema_and_price(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    generate_paths = {p for p in doc["paths"] if p.startswith("/api/generate/")}
    assert generate_paths == {r.path for r in CATALOG}
    for route in ROUTES:
        op = doc["paths"][route.path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        expected = route.input.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="validation"
        )
        assert {k: v for k, v in schemas[name].items() if k != "description"} == {
            k: v for k, v in expected.items() if k != "description"
        }
        low, high = route.price.bounds()
        assert op["x-payment"]["price"]["min"] == format_usd(low)
        assert op["x-payment"]["price"]["max"] == format_usd(high)
        assert set(op["responses"]) >= {"200", "400", "402"}
        for accept in op["x-payment"]["accepts"]:
            PaymentRequirements.model_validate(accept)
    assert "/api/quote/{model}/{operation}" in doc["paths"]


async def test_llms_and_agents_txt_list_every_route_with_its_price(client: httpx.AsyncClient) -> None:
    llms = (await client.get("/llms.txt")).text
    agents = (await client.get("/agents.txt")).text
    for route in ROUTES:
        low, high = route.price.bounds()
        assert f"`{route.path}`" in llms
        line = next(line for line in agents.splitlines() if line.startswith(f"POST {route.path} |"))
        assert f"${format_usd(low)}" in line and f"${format_usd(high)}" in line
    for route in CATALOG:
        assert f"**{route.model} {route.operation}**" in llms


async def test_well_known_x402_lists_every_paid_resource(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/.well-known/x402")).json()
    assert doc["resources"] == [BASE + r.path for r in ROUTES]
    for route, item in zip(ROUTES, doc["items"], strict=True):
        assert item["input"]["schema"] == route.input.model_json_schema(mode="validation")
        [accept] = item["accepts"]
        assert int(PaymentRequirements.model_validate(accept).amount) == route.price.bounds()[0]


async def test_markup_shows_in_every_document(settings_with_markup_client: httpx.AsyncClient) -> None:
    client = settings_with_markup_client
    route = CATALOG.get("grok", "generate")  # flat $0.07
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["paths"][route.path]["post"]["x-payment"]["price"]["min"] == "0.0805"
    assert "$0.0805" in (await client.get("/llms.txt")).text
    response = await client.post(route.path, json={"prompt": "p"})
    assert response.json()["price"]["micros"] == "80500"
