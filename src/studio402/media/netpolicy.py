"""Where the media fetcher may connect: URL/host normalisation and the forbidden-address policy.

Two jobs, both pure (no I/O):

* `parse_url` turns a user URL into a `Target` (scheme, ASCII host, port, request target). Every spelling
  of a host is normalised the way a resolver would read it: percent-decoding, IDNA/UTS-46 mapping
  (fullwidth digits and dots included), a trailing dot, and any host whose last label is a number is an
  IPv4 literal parsed with the C library's `inet_aton` rules (`127.1`, `0x7f.1`, `2130706433`,
  `017700000001`). Credentials in the URL are refused outright. The HTTP request is later built from these
  components, so no second URL parser can read the URL differently.
* `refusal_reason` says why an address must not be contacted, or `None`. It is an explicit table
  (IANA special-purpose registries plus cloud metadata), not `ipaddress.is_global`, whose answers change
  between Python releases. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by the
  embedded address; other IPv6 space must be global unicast (2000::/3).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import unquote, urlsplit

import idna

from studio402.errors import MediaError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_MAX_URL_CHARS = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_DNS_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
_PATH_SAFE = "/?%:@!$&'()*+,;=-._~"

# Never reachable, even through `extra_allowed_networks`: instance metadata services.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OCI, DigitalOcean, ...
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)

_FORBIDDEN_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
    )
)

_FORBIDDEN_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ...)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
    )
)
_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


@dataclass(frozen=True, slots=True)
class Target:
    """One normalised hop: what we resolve, where we connect, what we put in the request line."""

    scheme: str  # "http" | "https"
    host: str  # ASCII: punycode name, dotted IPv4, or IPv6 without brackets
    port: int
    target: str  # path + query, ASCII, fragment dropped
    literal: IPAddress | None  # set when the host is an IP literal (no DNS)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if isinstance(self.literal, IPv6Address) else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal_reason(ip: IPAddress, extra_allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why `ip` must not be contacted, or None when it may be."""
    ip = _without_scope(ip)
    if ip in METADATA_ADDRESSES:
        return "cloud metadata service"
    v4 = embedded_ipv4(ip) if isinstance(ip, IPv6Address) else ip
    if v4 is not None and v4 in METADATA_ADDRESSES:
        return "cloud metadata service"
    allowed = tuple(extra_allowed)
    if _in_any(ip, allowed) or (v4 is not None and _in_any(v4, allowed)):
        return None
    if v4 is not None:
        return _v4_reason(v4)
    assert isinstance(ip, IPv6Address)
    return _v6_reason(ip)


def _without_scope(ip: IPAddress) -> IPAddress:
    if isinstance(ip, IPv6Address) and ip.scope_id is not None:
        return IPv6Address(int(ip))
    return ip


def _in_any(ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _v4_reason(ip: IPv4Address) -> str | None:
    for net, why in _FORBIDDEN_V4:
        if ip in net:
            return why
    return None


def _v6_reason(ip: IPv6Address) -> str | None:
    if ip not in _GLOBAL_UNICAST_V6:
        # Loopback, unspecified, IPv4-compatible/translated, ULA, link/site-local, multicast, unassigned.
        return "not global unicast"
    for net, why in _FORBIDDEN_V6:
        if ip in net:
            return why
    return None


def parse_url(raw: str) -> Target:
    """Normalise a user or Location URL; raise MediaError(url_invalid | url_scheme_not_allowed)."""
    if not raw or len(raw) > _MAX_URL_CHARS or any(ch <= " " or ch in "\\\x7f" for ch in raw):
        raise _invalid("the URL is empty, too long, or contains spaces, control characters or backslashes")
    scheme = raw.partition(":")[0].lower()
    if scheme not in _DEFAULT_PORTS:
        raise MediaError(f"URL scheme {scheme!r} is not allowed", code="url_scheme_not_allowed")
    if not raw[len(scheme) + 1 :].startswith("//"):
        raise _invalid("the URL has no authority")
    try:
        parts = urlsplit(raw)
    except ValueError as exc:  # e.g. NFKC tricks in the authority, bad brackets
        raise _invalid(str(exc)) from None
    if "@" in parts.netloc:
        raise _invalid("credentials in URLs are not accepted")
    host_text, port = _split_authority(parts.netloc, _DEFAULT_PORTS[scheme])
    host, literal = normalise_host(host_text)
    target = _quote_path(parts.path or "/") + (f"?{_quote_path(parts.query)}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, target=target, literal=literal)


def _split_authority(netloc: str, default_port: int) -> tuple[str, int]:
    if netloc.startswith("["):
        host, sep, rest = netloc.partition("]")
        if not sep:
            raise _invalid("unterminated IPv6 literal")
        host += "]"
        if rest and not rest.startswith(":"):
            raise _invalid("junk after the IPv6 literal")
        port_text = rest[1:]
    else:
        host, _, port_text = netloc.partition(":")
    if not port_text:
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _invalid("invalid port")
    return host, int(port_text)


def normalise_host(text: str) -> tuple[str, IPAddress | None]:
    """ASCII host plus its address when the host is an IP literal, in any spelling a resolver accepts."""
    if text.startswith("["):
        return _ipv6_literal(text[1:-1])
    try:
        decoded = unquote(text, errors="strict")
        ascii_host = idna.encode(decoded, uts46=True).decode("ascii")
    except (UnicodeError, idna.IDNAError) as exc:
        raise _invalid(f"invalid host name: {exc}") from None
    ascii_host = ascii_host.removesuffix(".")
    if not ascii_host or len(ascii_host) > 253:
        raise _invalid("empty or overlong host name")
    if _NUMERIC_LABEL.fullmatch(ascii_host.rpartition(".")[2]):
        return _ipv4_literal(ascii_host)
    if not _DNS_NAME.fullmatch(ascii_host):
        raise _invalid(f"invalid host name {ascii_host!r}")
    return ascii_host, None


def _ipv4_literal(text: str) -> tuple[str, IPAddress]:
    # inet_aton is what getaddrinfo applies to numeric hosts; our charset check already excluded whitespace.
    try:
        ip = IPv4Address(socket.inet_aton(text))
    except OSError:
        raise _invalid(f"invalid IPv4 address {text!r}") from None
    return str(ip), ip


def _ipv6_literal(text: str) -> tuple[str, IPAddress]:
    if "%" in text:
        raise _invalid("IPv6 zone identifiers are not accepted")
    try:
        ip = IPv6Address(text)
    except ValueError:
        raise _invalid(f"invalid IPv6 address {text!r}") from None
    return str(ip), ip


def _quote_path(text: str) -> str:
    # Keep existing escapes and sub-delims; percent-encode anything else (non-ASCII included).
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in _PATH_SAFE) else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _invalid(detail: str) -> MediaError:
    return MediaError(detail, code="url_invalid")
