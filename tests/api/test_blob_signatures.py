"""Finding 9b: a malformed blob URL signature is a 4xx problem, never a 500 or a dropped connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from studio402.api.app import create_app
from studio402.config import Settings
from studio402.storage.base import UrlSigner
from studio402.storage.local import LocalBlobStore
from studio402.wiring import Wiring
from tests.conftest import STATIC_OFFER

KEY = "results/job_1/image.png"


@pytest.fixture
async def blob_client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, UrlSigner]]:
    settings = Settings(data_dir=tmp_path)
    wiring = Wiring.with_offers(settings, [STATIC_OFFER])
    wiring.signer = UrlSigner(b"k" * 32, settings.public_url)
    wiring.blobs = LocalBlobStore(tmp_path / "blobs", wiring.signer)
    await wiring.blobs.put(KEY, b"\x89PNG data", "image/png")
    transport = httpx.ASGITransport(app=create_app(wiring), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
        yield client, wiring.signer


async def test_a_signed_url_serves_the_file(blob_client: tuple[httpx.AsyncClient, UrlSigner]) -> None:
    client, signer = blob_client
    response = await client.get(signer.url(KEY, 60))
    assert response.status_code == 200 and response.content == b"\x89PNG data"


@pytest.mark.parametrize(
    ("e", "s"),
    [
        ("\u00b2", "0" * 40),  # superscript two: str.isdigit() says yes, int() says no
        ("\u0663\u0663", "0" * 40),  # Arabic-Indic digits
        ("9" * 5000, "0" * 40),
        ("9" * 40, "0" * 40),
        ("-1", "0" * 40),
        ("1e9", "0" * 40),
        ("", ""),
        ("4102444800", ""),
        ("4102444800", "zz" * 20),
        ("4102444800", "\u00e9" * 40),  # non-ASCII: hmac.compare_digest raises on it
        ("4102444800", "0" * 5000),
    ],
)
async def test_malformed_signatures_are_403_problems(
    blob_client: tuple[httpx.AsyncClient, UrlSigner], e: str, s: str
) -> None:
    client, _ = blob_client
    response = await client.get(f"/blobs/{KEY}", params={"e": e, "s": s})
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_signature"


async def test_an_expired_or_forged_link_is_still_url_expired(
    blob_client: tuple[httpx.AsyncClient, UrlSigner],
) -> None:
    client, signer = blob_client
    expired = signer.url(KEY, -10)
    forged = signer.url(KEY, 60)[:-1] + "0"
    for url in (expired, forged):
        response = await client.get(url)
        assert (response.status_code, response.json()["code"]) == (403, "url_expired")
