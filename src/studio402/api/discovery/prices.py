"""Price ranges of routes as published in discovery documents (markup included)."""

from __future__ import annotations

from dataclasses import dataclass

from studio402.catalog import Route
from studio402.catalog.pricing import PerSecond
from studio402.money import apply_markup, format_usd


@dataclass(frozen=True, slots=True)
class PriceRange:
    low: int
    high: int
    per_second: tuple[int, int] | None  # the rate range, for per-second routes

    @property
    def label(self) -> str:
        low, high = f"${format_usd(self.low)}", f"${format_usd(self.high)}"
        return low if self.low == self.high else f"{low}-{high}"

    @property
    def rate_label(self) -> str | None:
        if self.per_second is None:
            return None
        low, high = (f"${format_usd(v)}" for v in self.per_second)
        return (low if low == high else f"{low}-{high}") + "/s"

    @property
    def label_with_rate(self) -> str:
        """`$0.40-$3.20 ($0.10/s)`, or the plain label when there is no per-second rate."""
        return self.label + (f" ({self.rate_label})" if self.rate_label else "")


def price_range(route: Route, markup_bps: int) -> PriceRange:
    low, high = route.price.bounds()
    rate = None
    if isinstance(route.price, PerSecond):
        r_low, r_high = route.price.rate_bounds()
        rate = (apply_markup(r_low, markup_bps), apply_markup(r_high, markup_bps))
    return PriceRange(apply_markup(low, markup_bps), apply_markup(high, markup_bps), rate)
