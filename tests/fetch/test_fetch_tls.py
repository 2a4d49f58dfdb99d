"""TLS with a pinned socket: SNI, Host and certificate checks use the hostname, the socket the checked IP."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network

import pytest

from studio402.errors import MediaError
from studio402.media.fetch import FetchPolicy, SafeFetcher

from .conftest import ALLOWED_TEST_HOST, TLS_HOSTNAME, TlsSetup
from .servers import BODY, MapResolver, SpyBackend

POLICY = FetchPolicy(extra_allowed_networks=(ip_network(f"{ALLOWED_TEST_HOST}/32"),))  # https only


def _resolver() -> MapResolver:
    pinned = [[IPv4Address(ALLOWED_TEST_HOST)]]
    return MapResolver({TLS_HOSTNAME: pinned, "other.test": pinned})


async def test_https_to_a_pinned_address_verifies_the_hostname(tls: TlsSetup) -> None:
    spy, resolver = SpyBackend(), _resolver()
    fetcher = SafeFetcher(POLICY, resolver=resolver, ssl_context=tls.client_context, network_backend=spy)
    fetched = await fetcher.fetch(f"https://{TLS_HOSTNAME}:{tls.server.port}/ok")
    assert fetched.content == BODY
    assert fetched.url == f"https://{TLS_HOSTNAME}:{tls.server.port}/ok"
    assert fetched.peer_ip == IPv4Address(ALLOWED_TEST_HOST)
    assert spy.connects == [(ALLOWED_TEST_HOST, tls.server.port)]  # the socket went to the IP
    assert tls.sni_names == [TLS_HOSTNAME]  # while SNI named the host
    assert tls.server.requests[0].headers["host"] == f"{TLS_HOSTNAME}:{tls.server.port}"


@pytest.mark.parametrize("host", ["other.test", ALLOWED_TEST_HOST])
async def test_a_certificate_for_another_name_fails_verification(tls: TlsSetup, host: str) -> None:
    fetcher = SafeFetcher(POLICY, resolver=_resolver(), ssl_context=tls.client_context)
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(f"https://{host}:{tls.server.port}/ok")
    assert caught.value.code == "fetch_failed"
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.detail
    assert tls.server.requests == []


async def test_an_untrusted_certificate_fails_with_the_default_trust_store(tls: TlsSetup) -> None:
    fetcher = SafeFetcher(POLICY, resolver=_resolver())
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(f"https://{TLS_HOSTNAME}:{tls.server.port}/ok")
    assert caught.value.code == "fetch_failed"
    assert tls.server.requests == []


async def test_https_to_http_downgrade_is_refused(tls: TlsSetup) -> None:
    spy = SpyBackend()
    fetcher = SafeFetcher(POLICY, resolver=_resolver(), ssl_context=tls.client_context, network_backend=spy)
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(
            f"https://{TLS_HOSTNAME}:{tls.server.port}/goto?http://{TLS_HOSTNAME}:{tls.server.port}/ok"
        )
    assert caught.value.code == "url_scheme_not_allowed"
    assert len(spy.connects) == 1  # the https hop only


async def test_redirects_stay_on_tls_with_the_hostname(tls: TlsSetup) -> None:
    fetcher = SafeFetcher(POLICY, resolver=_resolver(), ssl_context=tls.client_context)
    fetched = await fetcher.fetch(f"https://{TLS_HOSTNAME}:{tls.server.port}/redirect/2")
    assert fetched.content == BODY
    assert tls.sni_names == [TLS_HOSTNAME] * 3
