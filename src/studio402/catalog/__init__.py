"""The catalog: every model x operation we sell, its input schema and its price rule.

`CATALOG.validate(model, operation, body)` is the single entry point that turns a JSON body into a
`ValidatedRequest` in canonical form; prices and payment fingerprints are computed from that form only,
so the same request always gets the same amount.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from studio402.catalog.base import GenerateInput, Kind, MediaSlot, Route, RouteInput, ValidatedRequest
from studio402.catalog.models import flux, gemini, grok, openai_image, seedance, sora, upload, veo, wan
from studio402.catalog.pricing import quote_micros
from studio402.errors import FieldError, UnknownRoute, ValidationFailed, field_errors_from_pydantic

__all__ = [
    "CATALOG",
    "Catalog",
    "GenerateInput",
    "Kind",
    "MediaSlot",
    "Route",
    "RouteInput",
    "ValidatedRequest",
]


def canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(route: Route, canonical: str) -> str:
    return hashlib.sha256(f"{route.model}\n{route.operation}\n{canonical}".encode()).hexdigest()


class Catalog:
    def __init__(self, routes: tuple[Route, ...], upload_route: Route) -> None:
        self._routes = {(r.model, r.operation): r for r in routes}
        if len(self._routes) != len(routes):
            raise ValueError("duplicate route in catalog")
        self.upload = upload_route

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def get(self, model: str, operation: str) -> Route:
        try:
            return self._routes[(model, operation)]
        except KeyError:
            known = ", ".join(r.key for r in self)
            raise UnknownRoute(f"no route {model}/{operation}; known routes: {known}") from None

    def lookup(self, model: str, operation: str) -> Route:
        """Like `get`, and also the upload route (jobs of paid upload slots)."""
        if (model, operation) == (self.upload.model, self.upload.operation):
            return self.upload
        return self.get(model, operation)

    def validate(self, route: Route, body: Any) -> ValidatedRequest:
        """Validate a decoded JSON body against the route; raise ValidationFailed listing every bad field."""
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError((), "the body must be a JSON object", "object_type")])
        renamed, errors = _apply_aliases(body, route.input.ALIASES)
        try:
            params = route.input.model_validate(renamed)
        except ValidationError as e:
            raise ValidationFailed(errors + field_errors_from_pydantic(e.errors())) from None
        errors += params.cross_check()
        if errors:
            raise ValidationFailed(errors)
        return self.canonicalize(route, params)

    def canonicalize(self, route: Route, params: RouteInput) -> ValidatedRequest:
        canonical = params.model_dump(mode="json", exclude_none=True)
        text = canonical_json(canonical)
        return ValidatedRequest(route, params, canonical, text, fingerprint(route, text))

    def quote(self, request: ValidatedRequest, markup_bps: int) -> int:
        """Price of a validated request in micro-dollars, markup included."""
        return quote_micros(request.route.price, request.canonical, markup_bps)


def _apply_aliases(
    body: Mapping[str, Any], aliases: Mapping[str, str]
) -> tuple[dict[str, Any], list[FieldError]]:
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, value in body.items():
        target = aliases.get(key, key)
        if target in out:
            errors.append(
                FieldError((key,), f"'{key}' and '{target}' are the same field; give one", "duplicate")
            )
            continue
        out[target] = value
    return out, errors


_ROUTES = (
    *gemini.ROUTES,
    *openai_image.ROUTES,
    *flux.ROUTES,
    *grok.ROUTES,
    *seedance.ROUTES,
    *wan.ROUTES,
    *sora.ROUTES,
    *veo.ROUTES,
)
CATALOG = Catalog(_ROUTES, upload.ROUTE)
