"""The address policy and URL normalisation, without any network."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio402.errors import MediaError
from studio402.media.netpolicy import embedded_ipv4, parse_url, refusal_reason

REFUSED = [
    "127.0.0.1", "127.255.255.254", "::1", "0.0.0.0", "0.1.2.3", "::",
    "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1",
    "169.254.0.1", "fe80::1", "100.64.0.1", "100.127.255.255",
    "224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255", "240.0.0.1",
    "198.18.0.1", "198.19.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "3fff::1",
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "::ffff:0:7f00:1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:a9fe:a9fe::1",
    "2001::1", "fec0::1", "100::1", "64:ff9b:1::1",
]  # fmt: skip
ALLOWED = [
    "93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "198.20.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_forbidden_addresses_are_refused(address: str) -> None:
    assert refusal_reason(ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ip_address(address)) is None


def test_extra_networks_open_a_range_but_never_metadata() -> None:
    extra = (ip_network("169.254.0.0/16"), ip_network("100.64.0.0/10"), ip_network("fc00::/7"))
    assert refusal_reason(ip_address("169.254.1.1"), extra) is None
    assert refusal_reason(ip_address("fd12::1"), extra) is None
    for metadata in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert refusal_reason(ip_address(metadata), extra) == "cloud metadata service"


def test_scoped_link_local_is_refused() -> None:
    assert refusal_reason(IPv6Address("fe80::1%eth0")) is not None


_FORBIDDEN_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
]  # fmt: skip


@st.composite
def forbidden_v4(draw: st.DrawFn) -> IPv4Address:
    net = IPv4Network(draw(st.sampled_from(_FORBIDDEN_V4)))
    return net[draw(st.integers(0, net.num_addresses - 1))]


def _embeddings(v4: IPv4Address) -> list[IPv6Address]:
    n = int(v4)
    return [
        IPv6Address(0xFFFF << 32 | n),  # ::ffff:a.b.c.d
        IPv6Address(0x0064FF9B << 96 | n),  # 64:ff9b::a.b.c.d
        IPv6Address(0x2002 << 112 | n << 80 | 1),  # 2002:aabb:ccdd::1
    ]


@settings(max_examples=300, deadline=None)
@given(forbidden_v4())
def test_every_ipv6_embedding_of_a_forbidden_ipv4_is_refused(v4: IPv4Address) -> None:
    for v6 in _embeddings(v4):
        assert embedded_ipv4(v6) == v4
        assert refusal_reason(v6) is not None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1).map(IPv4Address))
def test_embeddings_follow_the_embedded_ipv4(v4: IPv4Address) -> None:
    verdict = refusal_reason(v4) is None
    assert all((refusal_reason(v6) is None) == verdict for v6 in _embeddings(v4))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/", "https://0x7f000001/", "https://0x7F.1/", "https://2130706433/",
        "https://017700000001/", "https://0x7f.0x0.0x0.0x1/", "https://127.0.0.1./", "HTTPS://127.0.0.1/",
        "https://%31%32%37.0.0.1/", "https://%31%32%37%2e0%2e0%2e1/", "https://\uff11\uff12\uff17\uff0e0\uff0e0\uff0e1/",
    ],
)  # fmt: skip
def test_every_ipv4_spelling_normalises_to_the_address(url: str) -> None:
    target = parse_url(url)
    assert target.literal == IPv4Address("127.0.0.1")
    assert target.host == "127.0.0.1"


@pytest.mark.parametrize(
    "url", ["https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[::FFFF:7F00:1]/"]
)
def test_ipv6_spellings_normalise(url: str) -> None:
    target = parse_url(url)
    assert target.literal == IPv6Address("::ffff:7f00:1")
    assert target.url == "https://[::ffff:7f00:1]/"


def test_names_are_lowercased_idna_encoded_and_lose_the_trailing_dot() -> None:
    target = parse_url("HTTPS://B\u00dccher.Example.:8443/b\u00e4d%20path?q=\u00fc#frag")
    assert (target.scheme, target.host, target.port, target.literal) == (
        "https",
        "xn--bcher-kva.example",
        8443,
        None,
    )
    assert target.target == "/b%C3%A4d%20path?q=%C3%BC"
    assert target.url == "https://xn--bcher-kva.example:8443/b%C3%A4d%20path?q=%C3%BC"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://good.com@127.0.0.1/", "url_invalid"),
        ("https://user:pw@example.com/", "url_invalid"),
        ("https://good.com\uff20127.0.0.1/", "url_invalid"),
        ("https://good.com%40127.0.0.1/", "url_invalid"),
        ("https://127.0.0.1\\@good.com/", "url_invalid"),
        ("https://exa mple.com/", "url_invalid"),
        ("https://example.com/\r\nX: y", "url_invalid"),
        ("https://1.2.3.256/", "url_invalid"),
        ("https://example.123/", "url_invalid"),
        ("https://a_b.example/", "url_invalid"),
        ("https://[fe80::1%25lo]/", "url_invalid"),
        ("https://[::1/", "url_invalid"),
        ("https://example.com:0/", "url_invalid"),
        ("https://example.com:70000/", "url_invalid"),
        ("https:example.com/", "url_invalid"),
        ("https:///x", "url_invalid"),
        ("", "url_invalid"),
        ("ftp://example.com/", "url_scheme_not_allowed"),
        ("file:///etc/passwd", "url_scheme_not_allowed"),
        ("gopher://127.0.0.1:6379/_INFO", "url_scheme_not_allowed"),
        ("data:image/png;base64,AAAA", "url_scheme_not_allowed"),
        ("//example.com/x", "url_scheme_not_allowed"),
    ],
)
def test_unusable_urls_are_refused(url: str, code: str) -> None:
    with pytest.raises(MediaError) as caught:
        parse_url(url)
    assert caught.value.code == code
