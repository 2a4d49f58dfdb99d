from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .servers import MediaServer, Recorder, make_certificate

ALLOWED_TEST_HOST = "127.0.0.2"  # Linux routes all of 127/8 to lo; the policy opens just this /32
TLS_HOSTNAME = "media.test"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HAVE_IPV6 = _ipv6_loopback()


@dataclass
class LoopbackNet:
    """The allowed media server on 127.0.0.2:P and recorders on the forbidden 127.0.0.1:P and [::1]:P
    (same port, so any connection that escapes the pin to a forbidden address is counted)."""

    server: MediaServer
    recorders: list[Recorder]

    @property
    def port(self) -> int:
        return self.server.port

    async def forbidden_connections(self) -> int:
        return sum([await r.connections() for r in self.recorders])


@pytest.fixture
async def net() -> AsyncIterator[LoopbackNet]:
    hosts = ["127.0.0.1", "::1"] if HAVE_IPV6 else ["127.0.0.1"]
    for _ in range(20):
        server, recorders = MediaServer(ALLOWED_TEST_HOST), [Recorder(h) for h in hosts]
        await server.start()
        try:
            for recorder in recorders:
                await recorder.start(server.port)
        except OSError:  # that port is taken on 127.0.0.1 or ::1: try another
            await _stop(server, recorders)
            continue
        break
    else:
        raise RuntimeError("no port free on 127.0.0.1, 127.0.0.2 and ::1 at once")
    yield LoopbackNet(server, recorders)
    await _stop(server, recorders)


async def _stop(server: MediaServer, recorders: list[Recorder]) -> None:
    await server.stop()
    for recorder in recorders:
        await recorder.stop()


@dataclass
class TlsSetup:
    server: MediaServer
    client_context: ssl.SSLContext
    sni_names: list[str | None]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), TLS_HOSTNAME)


@pytest.fixture
async def tls(certificate: tuple[Path, Path]) -> AsyncIterator[TlsSetup]:
    cert, key = certificate
    names: list[str | None] = []
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)  # None: go on with the handshake
    client_ctx = ssl.create_default_context(cafile=str(cert))
    server = MediaServer(ALLOWED_TEST_HOST, ssl_context=server_ctx)
    await server.start()
    yield TlsSetup(server, client_ctx, names)
    await server.stop()
