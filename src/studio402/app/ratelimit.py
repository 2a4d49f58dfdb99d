"""Per-client token buckets: how many remote media downloads unpaid requests may make us do.

A bucket holds up to `per_minute` tokens and refills at `per_minute` a minute. IPv6 clients are keyed by
their /64 (one host usually owns a whole /64). At most `max_clients` buckets are kept: the least recently
used is dropped first (its client starts again with a full bucket), so memory stays bounded.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network, ip_address

from studio402.errors import RateLimited

MAX_CLIENTS = 100_000


class TokenBuckets:
    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_clients
        self._tokens: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def take(self, client: str, count: int) -> None:
        """Spend `count` tokens (at most a full bucket), or raise RateLimited with the wait."""
        if not self.enabled:
            return
        key = client_key(client)
        need = min(float(count), self._capacity)
        tokens = self._level(key)
        if tokens < need:
            raise self._limited(need - tokens)
        self._store(key, tokens - need)

    def check(self, client: str) -> None:
        """Raise RateLimited if the bucket is empty, spending nothing."""
        if not self.enabled:
            return
        tokens = self._level(client_key(client))
        if tokens < 1:
            raise self._limited(1 - tokens)

    def spend(self, client: str, count: int) -> None:
        """Spend after the fact (the request turned out unpaid); the bucket bottoms out at empty."""
        if self.enabled:
            key = client_key(client)
            self._store(key, max(self._level(key) - count, 0.0))

    def _level(self, key: str) -> float:
        entry = self._tokens.get(key)
        if entry is None:
            return self._capacity
        tokens, when = entry
        return min(self._capacity, tokens + (self._clock() - when) * self._rate)

    def _store(self, key: str, tokens: float) -> None:
        self._tokens[key] = (tokens, self._clock())
        self._tokens.move_to_end(key)
        while len(self._tokens) > self._max:
            self._tokens.popitem(last=False)

    def _limited(self, missing: float) -> RateLimited:
        wait = max(1, math.ceil(missing / self._rate))
        return RateLimited(
            f"too many requests fetching remote media without payment; retry in {wait} s",
            retry_after=wait,
        )


def client_key(host: str) -> str:
    """The address a bucket belongs to: the IPv4 address, or the /64 of an IPv6 one."""
    try:
        address = ip_address(host)
    except ValueError:
        return host  # not an IP (a test client, a unix socket): its own name
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(IPv6Network((address, 64), strict=False))
    return str(address)
