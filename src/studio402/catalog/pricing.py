"""Price rules: pure functions of a route's canonical body, in micro-dollars.

Rules are data (flat prices, lookup tables, per-second rates), so the published price range of a route is
computed from the same numbers that quote it. The operator markup is applied by `quote_micros`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from studio402.money import apply_markup, format_usd


class PriceRule(Protocol):
    def price(self, body: Mapping[str, Any]) -> int:
        """Price of one call in micro-dollars, before markup."""
        ...

    def bounds(self) -> tuple[int, int]:
        """Lowest and highest price this rule can produce."""
        ...

    def describe(self) -> str:
        """One line for humans (docs, quotes)."""
        ...


@dataclass(frozen=True, slots=True)
class Flat:
    micros: int

    def price(self, body: Mapping[str, Any]) -> int:
        return self.micros

    def bounds(self) -> tuple[int, int]:
        return self.micros, self.micros

    def describe(self) -> str:
        return f"${format_usd(self.micros)} per call"


def _key_part(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Table:
    """Price looked up by the values of one or more fields (None is looked up as "")."""

    fields: tuple[str, ...]
    table: Mapping[tuple[str, ...], int]

    def price(self, body: Mapping[str, Any]) -> int:
        key = tuple(_key_part(body.get(f)) for f in self.fields)
        try:
            return self.table[key]
        except KeyError:
            raise ValueError(f"no price for {dict(zip(self.fields, key, strict=True))}") from None

    def bounds(self) -> tuple[int, int]:
        values = self.table.values()
        return min(values), max(values)

    def describe(self) -> str:
        low, high = self.bounds()
        return f"${format_usd(low)}-${format_usd(high)} by {', '.join(self.fields)}"


def by_field(field: str, prices: Mapping[str, int]) -> Table:
    return Table((field,), {(k,): v for k, v in prices.items()})


@dataclass(frozen=True, slots=True)
class PerSecond:
    """A per-second rate times the requested duration."""

    seconds_field: str
    seconds: tuple[int, ...]
    rate: Table | Flat

    def price(self, body: Mapping[str, Any]) -> int:
        return int(body[self.seconds_field]) * self.rate.price(body)

    def bounds(self) -> tuple[int, int]:
        low, high = self.rate.bounds()
        return min(self.seconds) * low, max(self.seconds) * high

    def rate_bounds(self) -> tuple[int, int]:
        return self.rate.bounds()

    def describe(self) -> str:
        low, high = self.rate.bounds()
        rate = f"${format_usd(low)}" if low == high else f"${format_usd(low)}-${format_usd(high)}"
        return f"{rate} per second x {self.seconds_field} ({'/'.join(map(str, self.seconds))} s)"


def quote_micros(rule: PriceRule, body: Mapping[str, Any], markup_bps: int) -> int:
    return apply_markup(rule.price(body), markup_bps)
