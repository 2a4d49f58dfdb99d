"""Downloads from a real local server: bodies, redirects, size cap, timeouts, status codes, headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest

from studio402.errors import ConfigError, MediaError
from studio402.media.fetch import USER_AGENT, FetchPolicy, SafeFetcher

from .conftest import ALLOWED_TEST_HOST, HAVE_IPV6, LoopbackNet
from .servers import BODY, MediaServer

POLICY = FetchPolicy(allow_http=True, extra_allowed_networks=(ip_network(f"{ALLOWED_TEST_HOST}/32"),))


async def _refusal(policy: FetchPolicy, url: str) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await SafeFetcher(policy).fetch(url)
    return caught.value


async def test_fetches_the_exact_bytes(net: LoopbackNet) -> None:
    fetched = await SafeFetcher(POLICY).fetch(f"{net.server.origin}/ok")
    assert fetched.content == BODY
    assert fetched.content_type == "image/png"
    assert fetched.url == f"{net.server.origin}/ok"
    assert fetched.peer_ip == IPv4Address(ALLOWED_TEST_HOST)
    assert await net.forbidden_connections() == 0


async def test_sends_only_the_fixed_headers(net: LoopbackNet) -> None:
    await SafeFetcher(POLICY).fetch(f"{net.server.origin}/ok?x=1")
    (seen,) = net.server.requests
    assert seen.path == "/ok?x=1"
    assert seen.headers["host"] == f"{ALLOWED_TEST_HOST}:{net.port}"
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["accept-encoding"] == "identity"
    assert not {"cookie", "authorization", "proxy-authorization", "referer"} & seen.headers.keys()


async def test_follows_redirects_up_to_the_limit(net: LoopbackNet) -> None:
    fetched = await SafeFetcher(POLICY).fetch(f"{net.server.origin}/redirect/3")
    assert fetched.content == BODY
    assert fetched.url == f"{net.server.origin}/ok"
    assert [r.path for r in net.server.requests] == ["/redirect/3", "/redirect/2", "/redirect/1", "/ok"]


async def test_one_redirect_too_many_is_refused(net: LoopbackNet) -> None:
    error = await _refusal(POLICY, f"{net.server.origin}/redirect/4")
    assert error.code == "too_many_redirects"
    assert [r.path for r in net.server.requests] == [
        "/redirect/4",
        "/redirect/3",
        "/redirect/2",
        "/redirect/1",
    ]


async def test_no_redirects_when_the_policy_says_zero(net: LoopbackNet) -> None:
    error = await _refusal(replace(POLICY, max_redirects=0), f"{net.server.origin}/redirect/1")
    assert error.code == "too_many_redirects"


@pytest.mark.parametrize("location", ["ok", "/ok", "../ok", "//{host}:{port}/ok", "{origin}/ok"])
async def test_relative_locations_resolve_against_the_current_url(net: LoopbackNet, location: str) -> None:
    location = location.format(host=ALLOWED_TEST_HOST, port=net.port, origin=net.server.origin)
    fetched = await SafeFetcher(POLICY).fetch(f"{net.server.origin}/goto?{location}")
    assert fetched.content == BODY
    assert fetched.url == f"{net.server.origin}/ok"


async def test_body_over_the_cap_is_aborted_mid_stream(net: LoopbackNet) -> None:
    # The server sends cap + 1 bytes without a length and then never ends the body: only an abort at the
    # cap answers media_too_large (waiting for the end would time out instead).
    policy = replace(POLICY, max_bytes=64 * 1024, total_timeout_s=5.0)
    error = await _refusal(policy, f"{net.server.origin}/over-cap?{64 * 1024 + 1}")
    assert error.code == "media_too_large"


async def test_body_at_the_cap_is_accepted(net: LoopbackNet) -> None:
    fetched = await SafeFetcher(replace(POLICY, max_bytes=len(BODY))).fetch(f"{net.server.origin}/ok")
    assert fetched.content == BODY
    error = await _refusal(replace(POLICY, max_bytes=len(BODY) - 1), f"{net.server.origin}/ok")
    assert error.code == "media_too_large"


async def test_oversize_content_length_is_refused_up_front(net: LoopbackNet) -> None:
    error = await _refusal(replace(POLICY, total_timeout_s=5.0), f"{net.server.origin}/huge-length")
    assert error.code == "media_too_large"


@pytest.mark.parametrize("path", ["/stall", "/slow-body"])
async def test_slow_servers_hit_the_total_timeout(net: LoopbackNet, path: str) -> None:
    error = await _refusal(replace(POLICY, total_timeout_s=0.3), f"{net.server.origin}{path}")
    assert error.code == "fetch_timeout"


async def test_redirect_chain_shares_one_total_timeout(net: LoopbackNet) -> None:
    error = await _refusal(replace(POLICY, total_timeout_s=0.3), f"{net.server.origin}/goto?/stall")
    assert error.code == "fetch_timeout"
    assert [r.path for r in net.server.requests] == ["/goto?/stall", "/stall"]


async def test_error_status_is_fetch_failed(net: LoopbackNet) -> None:
    error = await _refusal(POLICY, f"{net.server.origin}/missing")
    assert error.code == "fetch_failed"
    assert error.extra["status"] == 404


async def test_connection_refused_is_fetch_failed(net: LoopbackNet) -> None:
    await net.server.stop()
    error = await _refusal(POLICY, f"{net.server.origin}/ok")
    assert error.code == "fetch_failed"


async def test_declared_content_type_filter(net: LoopbackNet) -> None:
    fetched = await SafeFetcher(replace(POLICY, allowed_content_types=frozenset({"image/*"}))).fetch(
        f"{net.server.origin}/ok"
    )
    assert fetched.content == BODY
    error = await _refusal(
        replace(POLICY, allowed_content_types=frozenset({"video/mp4"})), f"{net.server.origin}/ok"
    )
    assert error.code == "media_type_not_allowed"


@pytest.mark.parametrize(
    "make",
    [
        lambda: FetchPolicy(max_bytes=0),
        lambda: FetchPolicy(total_timeout_s=0.0),
        lambda: FetchPolicy(connect_timeout_s=-1.0),
        lambda: FetchPolicy(max_redirects=-1),
    ],
)
def test_nonsense_policies_are_config_errors(make: Callable[[], FetchPolicy]) -> None:
    with pytest.raises(ConfigError):
        make()


async def test_ipv6_literal_when_the_operator_opens_it() -> None:
    if not HAVE_IPV6:
        pytest.skip("this machine has no IPv6 loopback")
    server = MediaServer("::1")
    await server.start()
    try:
        policy = replace(POLICY, extra_allowed_networks=(ip_network("::1/128"),))
        fetched = await SafeFetcher(policy).fetch(f"http://[::1]:{server.port}/redirect/1")
    finally:
        await server.stop()
    assert fetched.content == BODY
    assert fetched.url == f"http://[::1]:{server.port}/ok"
    assert fetched.peer_ip == IPv6Address("::1")
    assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


async def test_post_sends_the_normalised_url(net: LoopbackNet) -> None:
    """Webhooks: a non-ASCII path or query is sent percent-encoded, like a download's, not refused."""
    status = await SafeFetcher(POLICY).post(
        f"{net.server.origin}/ok?note=café", b'{"ok": true}', {"content-type": "application/json"}
    )
    assert status == 200
    (seen,) = net.server.requests
    assert seen.path == "/ok?note=caf%C3%A9"
    assert seen.headers["host"] == f"{ALLOWED_TEST_HOST}:{net.port}"
    assert seen.headers["content-type"] == "application/json"
    assert await net.forbidden_connections() == 0
