"""An HTTPS receiver for webhooks: answers scripted statuses (optionally with a huge or a trickling body)
and records what it was sent."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    host: str
    ssl_context: ssl.SSLContext
    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    answer_bytes: int = 0  # the declared (and sent, unless the client hangs up) size of each answer
    trickle: bool = False  # send the answer one byte at a time, slowly
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode().split("\r\n")
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(request_line.split(" ")[1], headers, body))
            status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
            fields = f"content-length: {self.answer_bytes}\r\nconnection: close"
            writer.write(f"HTTP/1.1 {status} X\r\n{fields}\r\n\r\n".encode())
            await writer.drain()
            await self._answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        """The body, until it is all sent or the client hangs up."""
        step = 1 if self.trickle else CHUNK
        for offset in range(0, self.answer_bytes, step):
            if writer.is_closing():
                return
            writer.write(b"x" * min(step, self.answer_bytes - offset))
            await writer.drain()
            if self.trickle:
                await asyncio.sleep(0.02)
