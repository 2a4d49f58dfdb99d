"""Every price the catalog can quote lies in the spec's range, and equal requests cost the same."""

from __future__ import annotations

import pytest

from studio402.catalog import CATALOG, Route
from studio402.errors import ValidationFailed
from studio402.money import apply_markup
from tests.catalog_samples import enum_combinations, valid_body
from tests.spec_prices import PER_CALL, PER_SECOND

ROUTES = [*CATALOG, CATALOG.upload]


def test_catalog_has_every_spec_route() -> None:
    assert len(CATALOG) == 25
    assert {r.key for r in ROUTES} == set(PER_CALL) | set(PER_SECOND)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_every_combination_is_priced_within_the_spec_range(route: Route) -> None:
    seen = 0
    for body in enum_combinations(route):
        try:
            request = CATALOG.validate(route, body)
        except ValidationFailed:
            continue  # a combination the route's own rules refuse (e.g. transparent jpeg)
        micros = CATALOG.quote(request, 0)
        if route.key in PER_SECOND:
            low, high = PER_SECOND[route.key]
            seconds = int(request.canonical["duration"])
            assert low * seconds <= micros <= high * seconds, body
        else:
            low, high = PER_CALL[route.key]
            assert low <= micros <= high, body
        assert isinstance(micros, int)
        seen += 1
    assert seen > 0


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_published_bounds_are_reached(route: Route) -> None:
    """The range we publish is the real min/max over the enum space, not a hand-written guess."""
    prices = set()
    for body in enum_combinations(route):
        try:
            prices.add(CATALOG.quote(CATALOG.validate(route, body), 0))
        except ValidationFailed:
            continue
    assert (min(prices), max(prices)) == route.price.bounds()


def test_sora_price_follows_seconds_and_pro_sizes() -> None:
    sora, pro = CATALOG.get("sora-2", "generate"), CATALOG.get("sora-2-pro", "generate")

    def quote(route: Route, **kw: str) -> int:
        return CATALOG.quote(CATALOG.validate(route, {"prompt": "x", **kw}), 0)

    assert [quote(sora, seconds=s) for s in ("4", "8", "12")] == [400_000, 800_000, 1_200_000]
    assert quote(pro, seconds="4", size="1280x720") == 1_200_000
    assert quote(pro, seconds="12", size="1792x1024") == 6_000_000


def test_same_request_same_amount_and_fingerprint_whatever_the_spelling() -> None:
    route = CATALOG.get("sora-2", "generate")
    spellings = [
        {"prompt": "dog", "seconds": "8", "size": "1280x720"},
        {"size": "1280x720", "seconds": 8, "prompt": "dog"},
        {"prompt": "dog", "duration_seconds": 8.0, "resolution": "1280x720"},
        {"prompt": "dog", "duration_seconds": "8", "aspect_ratio": "16:9"},
        {"prompt": "dog", "seconds": "8", "size": "1280x720", "autoCrop": True},
    ]
    requests = [CATALOG.validate(route, body) for body in spellings]
    assert len({r.fingerprint for r in requests}) == 1
    assert len({CATALOG.quote(r, 0) for r in requests}) == 1


def test_different_requests_have_different_fingerprints() -> None:
    route = CATALOG.get("nano-banana", "generate")
    a = CATALOG.validate(route, {"prompt": "dog"})
    b = CATALOG.validate(route, {"prompt": "dog "})
    c = CATALOG.validate(CATALOG.get("nano-banana-pro", "generate"), {"prompt": "dog"})
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


@pytest.mark.parametrize("markup_bps", [1, 1500, 10_000, 33_333])
def test_markup_rounds_up_to_the_micro_dollar(markup_bps: int) -> None:
    route = CATALOG.get("nano-banana", "generate")
    request = CATALOG.validate(route, valid_body(route))
    base = CATALOG.quote(request, 0)
    marked = CATALOG.quote(request, markup_bps)
    assert marked == apply_markup(base, markup_bps)
    assert marked * 10_000 >= base * (10_000 + markup_bps) > (marked - 1) * 10_000
