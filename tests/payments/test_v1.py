"""x402 v1 clients: offers in the 402 body (named networks), X-PAYMENT accepted, X-PAYMENT-RESPONSE."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from studio402.chain.devnet import Devnet
from tests.devnet_fixture import authorize, new_payer
from tests.paid_support import BODY, GENERATE, running_server, transfers_from


@pytest.fixture(scope="module")
async def base_sepolia(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Devnet]:
    """A devnet with Base Sepolia's chain id: the only kind of local chain v1 can name ("base-sepolia")."""
    devnet = Devnet(tmp_path_factory.mktemp("sepolia"), chain_id=84532, token_name="USDC")
    await devnet.start()
    yield devnet
    await devnet.stop()


async def test_a_v1_client_pays_with_x_payment(base_sepolia: Devnet, tmp_path: Path) -> None:
    devnet = base_sepolia
    payer = await new_payer(devnet, 1_000_000)
    async with (
        running_server(devnet, tmp_path / "d") as server,
        httpx.AsyncClient(base_url=server.base) as http,
    ):
        unpaid = await http.post(GENERATE, json=BODY)
        [offer] = unpaid.json()["accepts"]
        assert unpaid.status_code == 402 and unpaid.json()["x402Version"] == 1
        assert (offer["network"], offer["maxAmountRequired"], offer["extra"]["name"]) == (
            "base-sepolia",
            "67000",
            "USDC",
        )
        auth, signature = authorize(devnet, payer, int(offer["maxAmountRequired"]))
        payment = {
            "x402Version": 1,
            "scheme": "exact",
            "network": "base-sepolia",
            "payload": {"authorization": auth.to_json(), "signature": "0x" + signature.hex()},
        }
        header = base64.b64encode(json.dumps(payment).encode()).decode()
        paid = await http.post(GENERATE, json=BODY, headers={"X-PAYMENT": header})
        again = await http.post(GENERATE, json=BODY, headers={"X-PAYMENT": header})
        wrong = await http.post(
            GENERATE,
            json=BODY,
            headers={
                "X-PAYMENT": base64.b64encode(json.dumps({**payment, "network": "base"}).encode()).decode()
            },
        )
    assert paid.status_code == 200, paid.text
    receipt = json.loads(base64.b64decode(paid.headers["X-PAYMENT-RESPONSE"]))
    assert receipt["success"] and receipt["network"] == "base-sepolia"
    assert again.json()["jobId"] == paid.json()["jobId"]
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_network"
    assert len(await transfers_from(devnet, payer.address)) == 1
