"""Money as integers. Prices are micro-dollars (1e-6 USD, the unit of 6-decimal USDC); on-chain amounts are
atomic units of an asset. Floats never touch money."""

from __future__ import annotations

import re
from dataclasses import dataclass

MICROS_PER_USD = 1_000_000
USD_DECIMALS = 6
_USD_RE = re.compile(r"^\$?(\d{1,12})(?:\.(\d{1,6}))?$")


def parse_usd(text: str) -> int:
    """'$0.134' / '0.134' / '2' -> micro-dollars. At most 6 decimals; no floats involved."""
    m = _USD_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not a dollar amount with at most 6 decimals: {text!r}")
    whole, frac = m.group(1), (m.group(2) or "")
    return int(whole) * MICROS_PER_USD + int(frac.ljust(USD_DECIMALS, "0"))


def format_usd(micros: int) -> str:
    """micro-dollars -> '0.134' (trailing zeros trimmed, at least 2 decimals)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def apply_markup(micros: int, markup_bps: int) -> int:
    """Add an operator markup in basis points, rounding up to the next micro-dollar."""
    if markup_bps < 0:
        raise ValueError("markup must not be negative")
    return -(-micros * (10_000 + markup_bps) // 10_000)


def _pow10(n: int) -> int:
    return int(10**n)


def to_atomic(micros: int, decimals: int) -> int:
    """micro-dollars -> atomic units of a dollar stablecoin with `decimals` decimals (rounding up)."""
    if decimals >= USD_DECIMALS:
        return micros * _pow10(decimals - USD_DECIMALS)
    step = _pow10(USD_DECIMALS - decimals)
    return -(-micros // step)


def from_atomic(atomic: int, decimals: int) -> int:
    """atomic units -> micro-dollars (exact for decimals <= 6, truncating below a micro-dollar otherwise)."""
    if decimals >= USD_DECIMALS:
        return atomic // _pow10(decimals - USD_DECIMALS)
    return atomic * _pow10(USD_DECIMALS - decimals)


@dataclass(frozen=True, slots=True)
class Asset:
    """A token on a network: what a price is paid in."""

    network: str  # CAIP-2, e.g. "eip155:8453"
    address: str
    decimals: int
    name: str  # EIP-712 domain name, e.g. "USD Coin"
    version: str  # EIP-712 domain version, e.g. "2"


def account_key(address: str) -> str:
    """How an account is stored and compared: EVM hex addresses in lower case (their case is only a
    checksum); base58 addresses (Solana) exactly as they are, since their case is part of the key."""
    return address.lower() if address[:2].lower() == "0x" else address
