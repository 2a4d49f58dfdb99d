from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio402.money import apply_markup, format_usd, from_atomic, parse_usd, to_atomic


@pytest.mark.parametrize(
    ("text", "micros"),
    [("0.134", 134_000), ("$2", 2_000_000), ("0.000001", 1), ("100", 100_000_000), ("$0.01", 10_000)],
)
def test_parse_usd(text: str, micros: int) -> None:
    assert parse_usd(text) == micros


@pytest.mark.parametrize("text", ["0.0000001", "1e3", "-1", "abc", "", "1.2.3"])
def test_parse_usd_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_usd(text)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_parse_round_trip(micros: int) -> None:
    assert parse_usd(format_usd(micros)) == micros


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**6))
def test_markup_is_the_exact_ceiling(micros: int, bps: int) -> None:
    marked = apply_markup(micros, bps)
    assert marked * 10_000 >= micros * (10_000 + bps) > (marked - 1) * 10_000


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=30))
def test_atomic_conversion_never_undercharges(micros: int, decimals: int) -> None:
    atomic = to_atomic(micros, decimals)
    assert from_atomic(atomic, decimals) >= micros
    if decimals >= 6:
        assert from_atomic(atomic, decimals) == micros
