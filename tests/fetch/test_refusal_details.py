"""Finding 9c: refusing a host name never tells the client which internal address it resolved to."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address

import pytest

from studio402.errors import MediaError
from studio402.media.fetch import FetchPolicy, SafeFetcher

from .servers import MapResolver, SpyBackend

IPAddress = IPv4Address | IPv6Address


@pytest.mark.parametrize(
    "answer",
    [
        [IPv4Address("10.41.7.23")],
        [IPv4Address("93.184.216.34"), IPv4Address("192.168.77.10")],
        [IPv6Address("fd00:abcd::17")],
        [IPv6Address("::ffff:10.41.7.23")],
        [IPv4Address("169.254.169.254")],
    ],
)
@pytest.mark.parametrize("post", [False, True])
async def test_refusal_names_no_resolved_address(
    answer: list[IPAddress], post: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = SafeFetcher(
        FetchPolicy(), resolver=MapResolver({"db.corp.test": [answer]}), network_backend=SpyBackend()
    )
    with caplog.at_level(logging.DEBUG, logger="studio402.media.fetch"), pytest.raises(MediaError) as caught:
        if post:  # webhooks go through the same vetting
            await fetcher.post("https://db.corp.test/hook", b"{}", {})
        else:
            await fetcher.fetch("https://db.corp.test/a.png")
    error = caught.value
    shown = f"{error.detail} {error.extra}"
    assert error.code == "address_not_allowed"
    assert "db.corp.test" in error.detail and "non-public address" in error.detail
    for ip in answer:
        forms = {str(ip), ip.exploded} | (
            {str(ip.ipv4_mapped)} if isinstance(ip, IPv6Address) and ip.ipv4_mapped else set()
        )
        assert not any(form in shown for form in forms), shown
    assert any(str(answer[-1]) in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_a_literal_address_may_be_named_back() -> None:
    """The client typed it: saying why it is refused tells them nothing new."""
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(FetchPolicy(), network_backend=SpyBackend()).fetch("https://10.1.2.3/a.png")
    assert caught.value.code == "address_not_allowed" and "private" in caught.value.detail
