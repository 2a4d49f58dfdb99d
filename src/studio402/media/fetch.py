"""SSRF-safe download of user-supplied media URLs (done before charging; backends never fetch user URLs).

How a hop is made safe:

1. `netpolicy.parse_url` normalises the URL (scheme, IDNA host, every IPv4/IPv6 literal spelling,
   no credentials). Only http(s) is accepted, and http only when the policy allows it.
2. The host is resolved ONCE through the injected `Resolver` (IP literals are not resolved at all) and
   EVERY address is checked with `netpolicy.refusal_reason`; one forbidden address refuses the hop.
3. The request goes through httpcore with a custom network backend (`_PinnedBackend`). httpcore still sees
   the real hostname in the URL, so the Host header, TLS SNI and certificate hostname verification all
   use the name; but the backend ignores DNS entirely and opens the TCP socket only to the checked
   addresses. A DNS answer that changes between check and connect (rebinding) is never consulted.
   We chose this over "connect to an IP URL + sni_hostname extension" because the URL, Host header and
   certificate check stay exactly what a normal client would send, and the only code that opens sockets
   is the backend, which refuses any origin other than the vetted one.
4. Redirects are followed by hand (at most `max_redirects`); each Location is resolved against the current
   URL and goes through steps 1-3 again, so https->http downgrades and redirects to internal addresses
   are refused.

httpcore never reads proxy settings or the environment (the `trust_env=False` of httpx), has no cookie
jar, and we send no credentials: only Host, a fixed User-Agent, Accept and `Accept-Encoding: identity`
(so the size cap counts the bytes we store, and no decompression bomb is possible). The size cap is
enforced while streaming and against a declared Content-Length; one total timeout covers DNS, connect,
every hop and the body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Protocol
from urllib.parse import urljoin

import httpcore

from studio402.errors import ConfigError, MediaError
from studio402.media.netpolicy import IPAddress, IPNetwork, Target, parse_url, refusal_reason

log = logging.getLogger(__name__)
USER_AGENT = "studio402-fetcher/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_ANSWER_BYTES = 64 * 1024  # of a webhook receiver's answer: enough to end a normal reply cleanly
# Special-use names that never point at a public media host (RFC 6761, 6762, 8375, ICANN .internal).
DEFAULT_DENIED_HOSTS = ("localhost", "*.localhost", "*.local", "*.internal", "*.home.arpa")

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What the fetcher may download, from where, and how much; built from configuration."""

    allow_http: bool = False
    max_bytes: int = 50 * 1024 * 1024
    total_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    max_redirects: int = 3
    # Media types ("image/png") or families ("image/*") accepted by the declared Content-Type; None = any.
    allowed_content_types: frozenset[str] | None = None
    # Escape hatch for operators and tests; cloud metadata addresses stay refused regardless.
    extra_allowed_networks: tuple[IPNetwork, ...] = ()
    # Exact names or "*.suffix" patterns, compared with the normalised ASCII host.
    denied_hosts: tuple[str, ...] = DEFAULT_DENIED_HOSTS

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_redirects < 0:
            raise ConfigError("fetch policy: max_bytes must be > 0 and max_redirects >= 0")
        if self.total_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ConfigError("fetch policy: timeouts must be > 0")

    def host_denied(self, host: str) -> bool:
        for pattern in self.denied_hosts:
            pattern = pattern.lower().removesuffix(".")
            if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return True
        return False

    def type_allowed(self, content_type: str | None) -> bool:
        if self.allowed_content_types is None:
            return True
        media_type = (content_type or "").partition(";")[0].strip().lower()
        family = media_type.partition("/")[0] + "/*"
        allowed = self.allowed_content_types
        return bool(media_type) and (media_type in allowed or family in allowed)


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # the final URL, after redirects
    content: bytes = field(repr=False)
    content_type: str | None  # as declared by the server: informational, probe the bytes before trusting
    peer_ip: IPAddress  # the checked address the body came from


class Resolver(Protocol):
    """Name -> addresses. Raise OSError (or return nothing) when the name does not resolve."""

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]: ...


class SystemResolver:
    """The OS resolver via `getaddrinfo`, asked for the absolute name (trailing dot) so that resolver
    search domains can never turn a user's name into an internal one."""

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            f"{host}.", port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return [ip_address(info[4][0]) for info in infos]


class SafeFetcher:
    """Downloads one user URL under a `FetchPolicy`; every failure is a `MediaError` with a stable code."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver: Resolver = resolver or SystemResolver()
        self._ssl_context = ssl_context
        self._backend = network_backend or httpcore.AnyIOBackend()

    async def fetch(self, url: str) -> Fetched:
        try:
            async with asyncio.timeout(self._policy.total_timeout_s):
                return await self._follow(parse_url(url))
        except TimeoutError:
            raise MediaError("fetching the media URL timed out", code="fetch_timeout") from None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` to a user URL (webhooks) under the same address rules; redirects are not followed.
        Returns the HTTP status; failures to connect are MediaError like for downloads. At most
        MAX_ANSWER_BYTES of the answer are read (only its status matters); once the status has arrived, a
        body that is too big, too slow or cut off does not change the outcome."""
        target = parse_url(url)
        status: int | None = None
        try:
            async with asyncio.timeout(self._policy.total_timeout_s):
                _, pool = self._pool(target, await self._vet(target))
                wire = [(b"Host", target.authority.encode("ascii")), (b"User-Agent", USER_AGENT.encode())]
                wire += [(k.encode(), v.encode()) for k, v in headers.items()]
                async with (
                    pool,
                    pool.stream(
                        "POST", _wire_url(target), headers=wire, content=body, extensions=self._ext()
                    ) as response,
                ):
                    status = response.status
                    await _skim(response, MAX_ANSWER_BYTES)
        except TimeoutError:
            if status is None:
                raise MediaError(f"posting to {target.url} timed out", code="fetch_timeout") from None
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            if status is None:
                raise MediaError(f"posting to {target.url} failed: {exc}", code="fetch_failed") from None
        assert status is not None  # every path without a status raised above
        return status

    async def _follow(self, target: Target) -> Fetched:
        for _ in range(self._policy.max_redirects + 1):
            addresses = await self._vet(target)
            outcome = await self._hop(target, addresses)
            if isinstance(outcome, Fetched):
                return outcome
            target = parse_url(urljoin(target.url, outcome))
        raise MediaError(
            f"more than {self._policy.max_redirects} redirects", code="too_many_redirects", url=target.url
        )

    async def _vet(self, target: Target) -> tuple[IPAddress, ...]:
        """Scheme, host and every address of one hop; returns the addresses we may connect to."""
        if target.scheme != "https" and not self._policy.allow_http:
            raise MediaError("only https URLs are accepted", code="url_scheme_not_allowed", url=target.url)
        if target.literal is None and self._policy.host_denied(target.host):
            raise _refused(target, "denied host name")
        addresses = (target.literal,) if target.literal is not None else await self._resolve(target)
        for ip in addresses:
            reason = refusal_reason(ip, self._policy.extra_allowed_networks)
            if reason is None:
                continue
            if target.literal is not None:  # the client wrote this address: naming it tells them nothing
                raise _refused(target, f"{ip} is {reason}")
            # What an internal name resolves to is a map of the network: the operator's log only.
            log.debug("refused %s: it resolves to %s (%s)", target.host, ip, reason)
            raise _refused(target, "it resolves to a non-public address")
        return addresses

    async def _resolve(self, target: Target) -> tuple[IPAddress, ...]:
        try:
            found = await self._resolver.resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise MediaError(f"cannot resolve {target.host}: {exc}", code="dns_failed") from None
        addresses = tuple(dict.fromkeys(found))
        if not addresses:
            raise MediaError(f"{target.host} has no address", code="dns_failed")
        return addresses

    async def _hop(self, target: Target, addresses: tuple[IPAddress, ...]) -> Fetched | str:
        """One request to a vetted target: the Fetched media, or the Location to follow."""
        backend, pool = self._pool(target, addresses)
        url = _wire_url(target)
        try:
            async with pool, pool.stream("GET", url, headers=_headers(target), extensions=self._ext()) as r:
                return await self._read(target, backend, r)
        except httpcore.TimeoutException:
            raise MediaError("fetching the media URL timed out", code="fetch_timeout") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise MediaError(f"fetching {target.url} failed: {exc}", code="fetch_failed") from None

    def _pool(
        self, target: Target, addresses: tuple[IPAddress, ...]
    ) -> tuple[_PinnedBackend, httpcore.AsyncConnectionPool]:
        """A one-connection pool that can reach only the vetted addresses of `target`."""
        backend = _PinnedBackend(self._backend, target, addresses)
        tls = (self._ssl_context or _default_ssl_context()) if target.scheme == "https" else None
        pool = httpcore.AsyncConnectionPool(
            ssl_context=tls, max_connections=1, http1=True, http2=False, network_backend=backend
        )
        return backend, pool

    def _ext(self) -> dict[str, object]:
        total, connect = self._policy.total_timeout_s, self._policy.connect_timeout_s
        return {"timeout": {"connect": connect, "read": total, "write": total, "pool": total}}

    async def _read(self, target: Target, backend: _PinnedBackend, resp: httpcore.Response) -> Fetched | str:
        if resp.status in REDIRECT_STATUSES:
            return _location(target, resp)
        if not 200 <= resp.status < 300 or resp.status in (204, 205, 206):
            detail = f"{target.url} answered HTTP {resp.status}"
            raise MediaError(detail, code="fetch_failed", status=resp.status)
        content_type = _header(resp, b"content-type")
        if not self._policy.type_allowed(content_type):
            raise MediaError(f"content type {content_type!r} is not accepted", code="media_type_not_allowed")
        body = await self._read_body(target, resp)
        assert backend.peer is not None  # a response implies a connection through the backend
        return Fetched(url=target.url, content=body, content_type=content_type, peer_ip=backend.peer)

    async def _read_body(self, target: Target, resp: httpcore.Response) -> bytes:
        limit = self._policy.max_bytes
        declared = _header(resp, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(target, limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_stream():
            size += len(chunk)
            if size > limit:  # leaving the stream context closes the connection mid-body
                raise _too_large(target, limit)
            chunks.append(chunk)
        return b"".join(chunks)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the vetted addresses of one origin; never resolves a name."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, target: Target, addresses: Sequence[IPAddress]):
        self._inner = inner
        self._origin = (target.host, target.port)
        self._addresses = tuple(addresses)
        self.peer: IPAddress | None = None

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if (host, port) != self._origin:
            raise httpcore.ConnectError(f"refusing to connect to unvetted origin {host}:{port}")
        error: Exception = httpcore.ConnectError("no address to connect to")
        for ip in self._addresses:  # every one of them passed the policy
            try:
                stream = await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            self.peer = ip
            return stream
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[_SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used by the media fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~0.1 s, so it is built once, on the first https hop.
    return httpcore.default_ssl_context()


def _wire_url(target: Target) -> httpcore.URL:
    """The request as vetted: normalised host (the pinned origin) and percent-encoded target."""
    return httpcore.URL(scheme=target.scheme, host=target.host, port=target.port, target=target.target)


def _headers(target: Target) -> list[tuple[bytes, bytes]]:
    return [
        (b"Host", target.authority.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode("ascii")),
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", b"identity"),
        (b"Connection", b"close"),
    ]


async def _skim(resp: httpcore.Response, limit: int) -> None:
    """Read and drop at most about `limit` bytes of a body; leaving the stream closes the connection."""
    seen = 0
    async for chunk in resp.aiter_stream():
        seen += len(chunk)
        if seen >= limit:
            return


def _header(resp: httpcore.Response, name: bytes) -> str | None:
    for key, value in resp.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _location(target: Target, resp: httpcore.Response) -> str:
    raw = next((value for key, value in resp.headers if key.lower() == b"location"), None)
    if not raw:
        raise MediaError(f"{target.url} redirected without a Location", code="fetch_failed")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MediaError("the redirect Location is not UTF-8", code="url_invalid") from None


def _refused(target: Target, why: str) -> MediaError:
    return MediaError(f"{target.host} may not be fetched: {why}", code="address_not_allowed", url=target.url)


def _too_large(target: Target, limit: int) -> MediaError:
    return MediaError(f"{target.url} is larger than {limit} bytes", code="media_too_large", max_bytes=limit)
