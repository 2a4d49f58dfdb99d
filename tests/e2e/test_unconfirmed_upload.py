"""Finding 9d: an upload that was paid but never confirmed is not a usable media input."""

from __future__ import annotations

import base64

import httpx

from tests.devnet_fixture import new_payer
from tests.e2e.test_uploads import buy_upload, png, put
from tests.paid_support import PaidServer, challenge, payment_header, transfers_from

EDIT = "/api/generate/nano-banana/edit"


async def _refused_before_any_price(server: PaidServer, http: httpx.AsyncClient, blob_url: str) -> None:
    response = await http.post(EDIT, json={"prompt": "p", "images": [blob_url]})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "upload_not_confirmed" and "PAYMENT-REQUIRED" not in response.headers


async def test_unconfirmed_upload_is_refused_before_any_price(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    uploader, payer = await new_payer(devnet, 1_000_000), await new_payer(devnet, 1_000_000)
    never_put = await buy_upload(paid_server, uploader.key, "a.png", "image/png")
    put_only = await buy_upload(paid_server, uploader.key, "b.png", "image/png")
    assert (await put(paid_server, put_only, png())).status_code == 200
    async with paid_server.client() as http:
        for slot in (never_put, put_only):
            await _refused_before_any_price(paid_server, http, slot["blobUrl"])
        # A payment signed for a valid body and sent with the unconfirmed input: still refused, not charged.
        accepted = await challenge(
            http,
            EDIT,
            {"prompt": "p", "images": ["data:image/png;base64," + base64.b64encode(png()).decode()]},
        )
        paid = await http.post(
            EDIT,
            json={"prompt": "p", "images": [put_only["blobUrl"]]},
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted)},
        )
    assert (paid.status_code, paid.json()["code"]) == (400, "upload_not_confirmed")
    assert await transfers_from(devnet, payer.address) == []
