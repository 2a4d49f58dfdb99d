"""Bodies built from the catalog's own schemas: a valid one per route, and the enum fields to break."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from studio402.catalog import Route

IMAGE_URL = "https://media.example.com/uploads/a.png"
SAMPLE_VALUES: dict[str, Any] = {
    "prompt": "a red fox in fresh snow, golden hour",
    "images": [IMAGE_URL],
    "urls": [IMAGE_URL],
    "image": IMAGE_URL,
    "filename": "reference.png",
    "contentType": "image/png",
}


def schema(route: Route) -> dict[str, Any]:
    return route.input.model_json_schema(mode="validation")


def valid_body(route: Route) -> dict[str, Any]:
    """The smallest valid body: only the required fields."""
    return {name: SAMPLE_VALUES[name] for name in schema(route).get("required", [])}


def enum_fields(route: Route) -> dict[str, list[Any]]:
    """Every field whose value is one of a fixed set (booleans excluded)."""
    out: dict[str, list[Any]] = {}
    for name, prop in schema(route)["properties"].items():
        options = prop.get("anyOf", [prop])
        values = [v for o in options for v in (o.get("enum") or ([o["const"]] if "const" in o else []))]
        if values:
            if any(o.get("type") == "null" for o in options):
                values.append(None)
            out[name] = values
    return out


def enum_combinations(route: Route, limit: int = 5000) -> Iterator[dict[str, Any]]:
    """Valid bodies for every combination of enum values that passes the route's own cross-field rules."""
    fields = enum_fields(route)
    names = list(fields)
    base = valid_body(route)
    for values in itertools.islice(itertools.product(*(fields[n] for n in names)), limit):
        yield {**base, **dict(zip(names, values, strict=True))}
