"""Real sockets for the fetcher tests: a small HTTP(S) media server, connection recorders, fakes at the
edges we inject (resolver, network backend), and a self-signed certificate made with the openssl CLI."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from urllib.parse import unquote

import httpcore

IPAddress = IPv4Address | IPv6Address
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
BODY = bytes(range(256)) * 40 + b"end"  # 10 243 bytes, every byte value present


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class Recorder:
    """A real listening socket that counts every TCP connection the kernel hands it."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.accepted: list[tuple[str, int]] = []
        self._probes = 0
        self._server: asyncio.Server | None = None

    async def start(self, port: int) -> None:
        self._server = await asyncio.get_running_loop().create_server(lambda: _Counter(self), self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def connections(self) -> int:
        """Connections accepted so far, apart from our probes. We open one probe and wait until it is
        accepted: the accept queue is FIFO, so any earlier connection has been counted by then."""
        _, writer = await asyncio.open_connection(self.host, self.port)
        probe = writer.get_extra_info("sockname")[:2]
        while probe not in self.accepted:
            await asyncio.sleep(0)
        writer.close()
        self._probes += 1
        return len(self.accepted) - self._probes

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _Counter(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._recorder.accepted.append(transport.get_extra_info("peername")[:2])
        transport.close()


class MediaServer:
    """HTTP/1.1 (or HTTPS) server with a few behaviours chosen by path; records what it was sent."""

    def __init__(self, host: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = 0
        self.requests: list[SeenRequest] = []
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def origin(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, port, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = _parse_head(head)
            self.requests.append(request)
            await self._respond(request.path, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away, as the size-cap and timeout tests make it
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _respond(self, target: str, writer: asyncio.StreamWriter) -> None:
        path, _, query = target.partition("?")
        if path == "/ok":
            await _send(writer, 200, BODY, [("Content-Type", "image/png")])
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            await _send(writer, 302, b"", [("Location", "/ok" if left <= 1 else f"/redirect/{left - 1}")])
        elif path == "/goto":
            await _send(writer, 302, b"", [("Location", unquote(query))])
        elif path == "/missing":
            await _send(writer, 404, b"not here")
        elif path == "/over-cap":  # ?n bytes without a length, then never finishes
            await _send(writer, 200, b"x" * int(query), [], length=False)
            await self._stop.wait()
        elif path == "/huge-length":
            await _send(writer, 200, b"", [("Content-Length", str(10**12))], length=False)
            await self._stop.wait()
        elif path == "/slow-body":
            await _send(writer, 200, b"partial", [("Content-Length", "100")], length=False)
            await self._stop.wait()
        else:  # "/stall": read the request, never answer
            await self._stop.wait()


def _parse_head(head: bytes) -> SeenRequest:
    lines = head.decode("latin-1").split("\r\n")
    target = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return SeenRequest(path=target, headers=headers)


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
    *,
    length: bool = True,
) -> None:
    lines = [f"HTTP/1.1 {status} X", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


@dataclass
class MapResolver:
    """Fake DNS: a fixed answer per name, or one answer per successive call (rebinding)."""

    answers: dict[str, Sequence[Sequence[IPAddress]]]
    calls: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"NXDOMAIN {host}")
        seq = self.answers[host]
        return seq[min(self.calls.count(host), len(seq)) - 1]


class SpyBackend(httpcore.AsyncNetworkBackend):
    """The real anyio backend, recording every connect the fetcher asks for."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def make_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    """A self-signed certificate for `hostname` (also its own CA): (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={hostname}", "-addext", f"subjectAltName=DNS:{hostname}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
