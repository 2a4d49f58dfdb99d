"""Token buckets for unpaid media downloads: refill, per-client keys, bounded memory."""

from __future__ import annotations

import pytest

from studio402.app.ratelimit import TokenBuckets, client_key
from studio402.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_then_refill_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, clock=clock)  # one token every 10 s
    buckets.take("10.0.0.1", 4)
    buckets.take("10.0.0.1", 2)
    with pytest.raises(RateLimited) as refused:
        buckets.take("10.0.0.1", 1)
    assert refused.value.code == "rate_limited" and refused.value.retry_after == 10
    buckets.take("10.0.0.2", 6)  # another client has its own bucket
    clock.now += 10
    buckets.take("10.0.0.1", 1)
    with pytest.raises(RateLimited):
        buckets.check("10.0.0.1")


def test_a_request_needing_more_than_a_bucket_waits_for_a_full_one() -> None:
    clock = Clock()
    buckets = TokenBuckets(2, clock=clock)
    buckets.take("10.0.0.1", 14)  # 14 URLs: the whole bucket, not an error forever
    with pytest.raises(RateLimited) as refused:
        buckets.take("10.0.0.1", 14)
    assert refused.value.retry_after == 60


def test_spend_after_the_fact_empties_but_never_owes() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, clock=clock)
    buckets.check("10.0.0.1")
    buckets.spend("10.0.0.1", 50)
    with pytest.raises(RateLimited) as refused:
        buckets.check("10.0.0.1")
    assert refused.value.retry_after == 10  # empty, not 440 s in debt
    clock.now += 10
    buckets.check("10.0.0.1")


def test_zero_is_off() -> None:
    buckets = TokenBuckets(0)
    assert not buckets.enabled
    for _ in range(100):
        buckets.take("10.0.0.1", 10)
        buckets.spend("10.0.0.1", 10)
        buckets.check("10.0.0.1")


def test_ipv6_clients_share_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("testclient") == "testclient"


def test_memory_is_bounded_least_recently_used_first() -> None:
    clock = Clock()
    buckets = TokenBuckets(1, clock=clock, max_clients=3)
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        buckets.take(host, 1)
    buckets.take("10.0.0.1", 1)  # dropped when the 4th came: starts full again
    with pytest.raises(RateLimited):
        buckets.take("10.0.0.4", 1)
