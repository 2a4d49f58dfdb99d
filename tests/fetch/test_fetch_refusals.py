"""Forbidden targets are refused before any connection: real listening sockets count what reaches them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest

from studio402.errors import MediaError
from studio402.media.fetch import FetchPolicy, SafeFetcher

from .conftest import ALLOWED_TEST_HOST, HAVE_IPV6, LoopbackNet
from .servers import BODY, MapResolver, SpyBackend

POLICY = FetchPolicy(allow_http=True, extra_allowed_networks=(ip_network(f"{ALLOWED_TEST_HOST}/32"),))

LOOPBACK_SPELLINGS = [
    ("http://127.0.0.1:{port}/", "address_not_allowed"),
    ("http://127.1:{port}/", "address_not_allowed"),
    ("http://0x7f000001:{port}/", "address_not_allowed"),
    ("http://0x7f.1:{port}/", "address_not_allowed"),
    ("http://2130706433:{port}/", "address_not_allowed"),
    ("http://017700000001:{port}/", "address_not_allowed"),
    ("http://127.0.0.1.:{port}/", "address_not_allowed"),
    ("HTTP://127.0.0.1:{port}/", "address_not_allowed"),
    ("http://%31%32%37.0.0.1:{port}/", "address_not_allowed"),
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{port}/", "address_not_allowed"),
    ("http://0:{port}/", "address_not_allowed"),  # 0.0.0.0 reaches local sockets on Linux
    ("http://[::1]:{port}/", "address_not_allowed"),
    ("http://[::]:{port}/", "address_not_allowed"),
    ("http://[::ffff:127.0.0.1]:{port}/", "address_not_allowed"),
    ("http://[::ffff:7f00:1]:{port}/", "address_not_allowed"),
    ("http://[::127.0.0.1]:{port}/", "address_not_allowed"),
    ("http://[64:ff9b::7f00:1]:{port}/", "address_not_allowed"),
    ("http://[2002:7f00:1::]:{port}/", "address_not_allowed"),
    ("http://localhost:{port}/", "address_not_allowed"),
    ("http://localhost.:{port}/", "address_not_allowed"),
    ("http://LocalHost:{port}/", "address_not_allowed"),
    ("http://foo.localhost:{port}/", "address_not_allowed"),
    ("http://good.com@127.0.0.1:{port}/", "url_invalid"),
    ("http://127.0.0.2:{port}@127.0.0.1:{port}/", "url_invalid"),
    ("http://127.0.0.1\\@127.0.0.2:{port}/", "url_invalid"),
]


@pytest.mark.parametrize(("template", "code"), LOOPBACK_SPELLINGS)
async def test_loopback_in_every_spelling_gets_no_connection(
    net: LoopbackNet, template: str, code: str
) -> None:
    spy = SpyBackend()
    fetcher = SafeFetcher(POLICY, network_backend=spy)  # the real OS resolver
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(template.format(port=net.port))
    assert caught.value.code == code
    assert spy.connects == []
    assert await net.forbidden_connections() == 0


async def test_the_os_resolver_answer_is_checked_too(net: LoopbackNet) -> None:
    # With the special-use names list emptied, "localhost" reaches getaddrinfo; whatever it answers
    # (loopback, or nothing for the absolute name) must not lead to a connection.
    fetcher = SafeFetcher(
        FetchPolicy(allow_http=True, denied_hosts=()), network_backend=(spy := SpyBackend())
    )
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(f"http://localhost:{net.port}/")
    assert caught.value.code in {"address_not_allowed", "dns_failed"}
    assert spy.connects == []
    assert await net.forbidden_connections() == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/", "http://169.254.169.254/", "https://[fd00:ec2::254]/",
        "https://100.100.100.200/", "https://169.254.170.2/", "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::]/", "https://0xa9fea9fe/",
        "https://10.0.0.1/", "https://10.255.255.255/", "https://172.16.0.1/", "https://172.31.0.1/",
        "https://192.168.0.1/", "https://[fc00::1]/", "https://[fd00::1]/", "https://[fe80::1]/",
        "https://169.254.0.1/", "https://100.64.0.1/", "https://224.0.0.1/", "https://[ff02::1]/",
        "https://255.255.255.255/", "https://240.0.0.1/", "https://198.18.0.1/", "https://192.0.2.1/",
        "https://198.51.100.1/", "https://203.0.113.1/", "https://[2001:db8::1]/", "https://192.0.0.1/",
        "https://metadata.google.internal/computeMetadata/v1/", "https://printer.local/",
    ],
)  # fmt: skip
async def test_private_and_metadata_targets_are_refused_before_connect(url: str) -> None:
    resolver, spy = MapResolver({}), SpyBackend()
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(FetchPolicy(allow_http=True), resolver=resolver, network_backend=spy).fetch(url)
    assert caught.value.code == "address_not_allowed"
    assert spy.connects == [] and resolver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/", "https://169.254.170.2/", "https://[fd00:ec2::254]/", "https://100.100.100.200/",
        "https://[::ffff:169.254.169.254]/", "https://[64:ff9b::a9fe:a9fe]/",
    ],
)  # fmt: skip
async def test_the_escape_hatch_never_opens_metadata(url: str) -> None:
    extra = (
        ip_network("169.254.0.0/16"),
        ip_network("fc00::/7"),
        ip_network("100.64.0.0/10"),
        ip_network("::/0"),
    )
    spy = SpyBackend()
    policy = FetchPolicy(extra_allowed_networks=extra)
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(policy, resolver=MapResolver({}), network_backend=spy).fetch(url)
    assert caught.value.code == "address_not_allowed"
    assert spy.connects == []


@pytest.mark.parametrize(
    "answer",
    [
        [IPv4Address("169.254.169.254")],
        [IPv6Address("fd00:ec2::254")],
        [IPv4Address("10.1.2.3")],
        [IPv4Address("93.184.216.34"), IPv4Address("192.168.0.10")],  # one bad address refuses the name
        [IPv6Address("::ffff:10.0.0.1")],
    ],
)
async def test_names_resolving_to_forbidden_addresses_are_refused(
    answer: list[IPv4Address | IPv6Address],
) -> None:
    resolver, spy = MapResolver({"evil.test": [answer]}), SpyBackend()
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(POLICY, resolver=resolver, network_backend=spy).fetch("https://evil.test/a.png")
    assert caught.value.code == "address_not_allowed"
    assert resolver.calls == ["evil.test"]
    assert spy.connects == []


async def test_name_resolving_to_loopback_gets_no_connection(net: LoopbackNet) -> None:
    answers: list[list[IPv4Address | IPv6Address]] = [[IPv4Address("127.0.0.1")]]
    if HAVE_IPV6:
        answers.append([IPv6Address("::1")])
    for answer in answers:
        resolver = MapResolver({"evil.test": [answer]})
        with pytest.raises(MediaError) as caught:
            await SafeFetcher(POLICY, resolver=resolver).fetch(f"http://evil.test:{net.port}/ok")
        assert caught.value.code == "address_not_allowed"
    assert await net.forbidden_connections() == 0


async def test_dns_rebinding_cannot_move_the_connection(net: LoopbackNet) -> None:
    # First answer allowed (127.0.0.2), every later one loopback on the same port as a recorder.
    resolver = MapResolver({"rebind.test": [[IPv4Address(ALLOWED_TEST_HOST)], [IPv4Address("127.0.0.1")]]})
    spy = SpyBackend()
    fetched = await SafeFetcher(POLICY, resolver=resolver, network_backend=spy).fetch(
        f"http://rebind.test:{net.port}/ok"
    )
    assert fetched.content == BODY
    assert fetched.peer_ip == IPv4Address(ALLOWED_TEST_HOST)
    assert resolver.calls == ["rebind.test"]  # resolved once; the connection used that answer
    assert spy.connects == [(ALLOWED_TEST_HOST, net.port)]
    assert net.server.requests[-1].headers["host"] == f"rebind.test:{net.port}"
    assert await net.forbidden_connections() == 0


async def test_each_redirect_hop_is_resolved_and_checked_again(net: LoopbackNet) -> None:
    resolver = MapResolver({"rebind.test": [[IPv4Address(ALLOWED_TEST_HOST)], [IPv4Address("127.0.0.1")]]})
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(POLICY, resolver=resolver).fetch(f"http://rebind.test:{net.port}/redirect/1")
    assert caught.value.code == "address_not_allowed"
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert [r.path for r in net.server.requests] == ["/redirect/1"]
    assert await net.forbidden_connections() == 0


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/",
        "http://[::1]:{port}/",
        "//127.0.0.1:{port}/protocol-relative",
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused(
    net: LoopbackNet, location: str
) -> None:
    spy = SpyBackend()
    fetcher = SafeFetcher(POLICY, network_backend=spy)
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(f"{net.server.origin}/goto?{location.format(port=net.port)}")
    assert caught.value.code == "address_not_allowed"
    assert [r.path.partition("?")[0] for r in net.server.requests] == ["/goto"]  # the first hop did succeed
    assert spy.connects == [(ALLOWED_TEST_HOST, net.port)]
    assert await net.forbidden_connections() == 0


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.2/", "ftp://example.com/x"])
async def test_redirect_to_another_scheme_is_refused(net: LoopbackNet, location: str) -> None:
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(POLICY).fetch(f"{net.server.origin}/goto?{location}")
    assert caught.value.code == "url_scheme_not_allowed"


async def test_http_needs_the_operator_to_allow_it(net: LoopbackNet) -> None:
    policy = FetchPolicy(extra_allowed_networks=POLICY.extra_allowed_networks)
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(policy).fetch(f"{net.server.origin}/ok")
    assert caught.value.code == "url_scheme_not_allowed"
    assert net.server.requests == []


@pytest.mark.parametrize("name", ["nxdomain.test", "empty.test"])
async def test_unresolvable_names_fail_with_dns_failed(name: str) -> None:
    resolver = MapResolver({"empty.test": [[]]})  # nxdomain.test: the fake raises OSError
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(POLICY, resolver=resolver).fetch(f"https://{name}/x.png")
    assert caught.value.code == "dns_failed"
    assert resolver.calls == [name]
