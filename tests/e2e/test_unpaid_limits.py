"""Issue 9, bounded unpaid work, through the real app on the devnet: remote media downloads for requests
that pay nothing are rate-limited per client (429 + Retry-After), and what they stored is kept an hour,
not the week of paid inputs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from PIL import Image

from studio402.api.app import create_app
from studio402.app.ratelimit import TokenBuckets
from studio402.chain.devnet import Devnet
from studio402.wiring import Wiring
from tests.devnet_fixture import new_payer
from tests.paid_support import (
    PaidServer,
    decode_header,
    devnet_settings,
    pay_and_wait,
    payment_header,
    running_server,
)
from tests.server import free_port, serve

EDIT = "/api/generate/nano-banana/edit"
QUOTE = "/api/quote/nano-banana/edit"


class MediaHost:
    """Serves one PNG at every path on 127.0.0.2 (text at /text.png) and counts the downloads."""

    def __init__(self) -> None:
        out = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "PNG")
        self.body = out.getvalue()
        self.downloads = 0
        self.port = 0

    async def __aenter__(self) -> MediaHost:
        self._server = await asyncio.start_server(self._serve, "127.0.0.2", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def url(self, name: str) -> str:
        return f"http://127.0.0.2:{self.port}/{name}.png"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        self.downloads += 1
        payload = b"not a picture at all" if request.startswith(b"GET /text.png") else self.body
        head = f"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {len(payload)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + payload)
        await writer.drain()
        writer.close()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def direct_server(
    devnet: Devnet, data_dir: Path, overrides: dict[str, Any]
) -> AsyncIterator[PaidServer]:
    """The app exposed directly: no proxy is trusted, so X-Forwarded-For is just a header anyone writes
    (uvicorn's default trusts it from 127.0.0.1, where the test client is)."""
    port = free_port()
    settings = devnet_settings(devnet, data_dir, port, **overrides)
    wiring = Wiring(settings)
    async with serve(create_app(wiring), port, proxy_headers=False) as base:
        yield PaidServer(base, wiring, settings, devnet)


def body(url: str) -> dict[str, Any]:
    return {"prompt": "p", "images": [url]}


async def test_unpaid_downloads_are_limited_per_client(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 1_000_000)
    overrides = {"media.allow_http": True, "media.allowed_networks": ["127.0.0.2/32"]}
    async with MediaHost() as media, direct_server(devnet, tmp_path / "d", overrides) as server:
        clock = Clock()
        server.wiring.paid.unpaid_fetches = TokenBuckets(2, clock=clock)  # a token every 30 s, frozen
        async with server.client() as http:
            assert (await http.post(QUOTE, json=body(media.url("a")))).status_code == 200
            unpaid = await http.post(EDIT, json=body(media.url("b")))
            assert unpaid.status_code == 402
            limited = await http.post(QUOTE, json=body(media.url("c")))
            spoofed = await http.post(
                EDIT, json=body(media.url("c")), headers={"X-Forwarded-For": "203.0.113.9"}
            )
            made_up = await http.post(
                EDIT, json=body(media.url("c")), headers={"PAYMENT-SIGNATURE": "made-up"}
            )
            assert media.downloads == 2
            for refused in (limited, spoofed, made_up):
                assert refused.status_code == 429, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.headers["retry-after"] == "30"
                assert refused.json()["code"] == "rate_limited"
            inline = await http.post(EDIT, json=body(_data_url(media.body)))
            assert inline.status_code == 402  # nothing to download: not limited
            cached = await http.post(QUOTE, json=body(media.url("a")))
            assert cached.status_code == 200  # downloaded a minute ago: not again
            accepted = decode_header(unpaid.headers["PAYMENT-REQUIRED"])["accepts"][0]
            paid = await http.post(
                EDIT,
                json=body(media.url("b")),
                headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted)},
            )
            assert paid.status_code == 200, paid.text  # the paid retry of the 402 is never limited
            assert media.downloads == 2

            clock.now += 60  # a full bucket again: two made-up payments that did not pay are counted
            made_up_header = {"PAYMENT-SIGNATURE": "made-up"}
            not_media = await http.post(EDIT, json=body(media.url("text")), headers=made_up_header)
            assert not_media.status_code == 400 and not_media.json()["code"] == "media_unsupported"
            bogus = await http.post(EDIT, json=body(media.url("d")), headers=made_up_header)
            assert bogus.status_code == 400 and bogus.json()["code"] == "invalid_payload"
            after = await http.post(QUOTE, json=body(media.url("e")))
            assert after.status_code == 429
            assert media.downloads == 4


async def test_zero_turns_the_limit_off(devnet: Devnet, tmp_path: Path) -> None:
    overrides = {
        "media.allow_http": True,
        "media.allowed_networks": ["127.0.0.2/32"],
        "media.unpaid_fetches_per_minute": 0,
    }
    async with MediaHost() as media, running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        async with server.client() as http:
            answers = [await http.post(QUOTE, json=body(media.url(str(i)))) for i in range(40)]
    assert [a.status_code for a in answers] == [200] * 40
    assert media.downloads == 40


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


async def test_unpaid_inputs_are_kept_an_hour_and_paid_ones_a_week(paid_server: PaidServer) -> None:
    payer = await new_payer(paid_server.devnet, 1_000_000)
    never_paid, paid = _png((1, 2, 3)), _png((4, 5, 6))
    async with paid_server.client() as http:
        quoted = await http.post(QUOTE, json=body(_data_url(never_paid)))
        assert (await http.post(EDIT, json=body(_data_url(never_paid)))).status_code == 402
    assert quoted.json()["request"]["images"] == [paid_server.base + "/blobs/" + _key(never_paid)]
    job = await pay_and_wait(paid_server, payer.key, EDIT, body(_data_url(paid)))
    assert job["status"] == "complete", job
    blobs = paid_server.wiring.blobs
    assert await blobs.stat(_key(never_paid)) is None  # not among the paid inputs
    assert await blobs.stat(_key(paid)) is not None  # its job moved it there
    paid_server.wiring.reconciler.clock = lambda: time.time() + 2 * 3600
    removed = await paid_server.wiring.reconciler.sweep_storage()
    assert removed["unpaid"] == 2  # both were unpaid once; the paid one has its own copy
    assert await blobs.stat(_key(paid)) is not None
    async with paid_server.client() as http:
        gone = await http.post(QUOTE, json={"prompt": "p", "images": [quoted.json()["request"]["images"][0]]})
    assert gone.status_code == 400 and gone.json()["code"] == "unknown_blob"


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def _key(data: bytes) -> str:
    return f"media/{hashlib.sha256(data).hexdigest()}.png"
