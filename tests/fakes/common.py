"""Plumbing shared by the fake upstream servers (tests only): a real HTTP server on loopback per fake, a
scenario the test sets, what the fake received, multipart parsing (python-multipart is not installed) and
real media bytes."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image

from studio402.media.video import encode_mp4
from tests.server import free_port, serve


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


class FakeUpstream:
    """Base of a fake: an app, the scenario a test sets (`fake.scenario = "moderated"`), what it received,
    and `hold` (jobs stay unfinished until the test sets it back to False). One server can serve a whole
    module: `reset()` before each test."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.url = ""
        self.port = 0
        self._closing = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget every job and request, back to the `ok` scenario; release hanging requests."""
        self.scenario = "ok"
        self.retry_after = "0"  # what 429 answers ask to wait, in seconds
        self.hold = False
        self.submissions = 0  # create requests that reached the fake, refused ones included
        self.received: list[Received] = []
        self._closing.set()
        self._closing = asyncio.Event()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeUpstream]:
        self.port = free_port()
        async with serve(self.app, self.port) as url:
            self.url = url
            try:
                yield self
            finally:
                self.reset()  # let hanging handlers return, or the server never stops

    async def record(self, request: Request) -> Received:
        body = await request.body()
        got = Received(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.received.append(got)
        return got

    def once(self, scenario: str) -> bool:
        """True the first time the current scenario is `scenario`; the fake then behaves normally."""
        if self.scenario == scenario:
            self.scenario = "ok"
            return True
        return False

    async def hang(self) -> None:
        """Never answer (until the fake stops): the client's timeout must fire."""
        await self._closing.wait()

    def hits(self, fragment: str, method: str | None = None) -> list[Received]:
        return [r for r in self.received if fragment in r.path and (method is None or r.method == method)]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    """multipart/form-data parts, or ValueError when the body is not that."""
    if not content_type.startswith("multipart/form-data"):
        raise ValueError(f"not multipart/form-data: {content_type!r}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("no multipart body")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            raise ValueError("a part without a name")
        parts.append(FormPart(name, part.get_filename(), part.get_content_type(), payload))
    return parts


def image_bytes(width: int, height: int, fmt: str = "png", *, transparent: bool = False) -> bytes:
    mode, color = ("RGBA", (40, 90, 200, 0)) if transparent else ("RGB", (40, 90, 200))
    img = Image.new(mode, (width, height), color)
    buf = io.BytesIO()
    img.save(buf, {"jpg": "JPEG", "jpeg": "JPEG"}.get(fmt, fmt.upper()))
    return buf.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """Decodes fully (a broken image raises)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


@lru_cache(maxsize=8)
def mp4_bytes(width: int, height: int, seconds: int, fps: int = 4) -> bytes:
    """A real H.264 MP4 of that size and duration (few frames: fast to encode)."""
    frames = (np.full((height, width, 3), (i * 40) % 255, dtype=np.uint8) for i in range(seconds * fps))
    return encode_mp4(frames, width=width, height=height, fps=fps, preset="ultrafast")
