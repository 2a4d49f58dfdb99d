"""Finding 9a: the upload route accepts exactly the file names the blob store accepts, so no payment is
ever taken for a slot whose PUT would then be refused on its name."""

from __future__ import annotations

import httpx
import pytest

from studio402.catalog import CATALOG
from studio402.errors import InputError, ValidationFailed
from studio402.storage.base import check_key

NAMES = [
    "photo.png",
    "a",
    "clip_01-final.mp4",
    "a.",
    "v1.2.3.webm",
    "my photo.png",  # space
    "a..png",
    "..png",
    "../etc/passwd",
    "dir/photo.png",
    "dir\\photo.png",
    ".hidden.png",
    "-dash.png",
    "tab\there.png",
    "nul\x00.png",
    "new\nline.png",
    "caf\u00e9.png",
    "x" * 200,
]


def _route_accepts(name: str) -> bool:
    try:
        CATALOG.validate(CATALOG.upload, {"filename": name, "contentType": "image/png"})
    except ValidationFailed:
        return False
    return True


def _store_accepts(name: str) -> bool:
    """A file name is one segment of the key `uploads/<id>/<name>` the store writes."""
    if "/" in name:
        return False
    try:
        check_key(f"uploads/0b5e9c4a-3f1d-4e2b-9c8a-7d6e5f4a3b2c/{name}")
        check_key(f"incoming/0b5e9c4a-3f1d-4e2b-9c8a-7d6e5f4a3b2c/{name}")  # direct uploads land here
    except InputError:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_route_and_store_agree_on_every_name(name: str) -> None:
    assert _route_accepts(name) == _store_accepts(name)


@pytest.mark.parametrize("name", ["my photo.png", "a..png", "../x.png", "a/b.png", "c\x01.png", " x.png"])
async def test_a_name_the_store_refuses_is_400_before_any_price(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/api/upload", json={"filename": name, "contentType": "image/png"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"
    assert "PAYMENT-REQUIRED" not in response.headers


async def test_a_name_the_store_accepts_gets_its_price(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/upload", json={"filename": "clip_01-v1.2.png", "contentType": "image/png"}
    )
    assert response.status_code == 402 and "PAYMENT-REQUIRED" in response.headers
