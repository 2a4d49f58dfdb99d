"""The x402 payment-identifier extension: a client's retries under one id never pay twice."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.devnet_fixture import new_payer
from tests.paid_support import (
    BODY,
    GENERATE,
    PaidServer,
    challenge,
    decode_header,
    payment_header,
    transfers_from,
)

ID = "pay_0123456789abcdef0123"


def with_id(payment_id: str) -> dict[str, Any]:
    return {"payment-identifier": {"info": {"required": False, "id": payment_id}}}


async def test_the_402_declares_the_extension(paid_server: PaidServer) -> None:
    async with paid_server.client() as http:
        response = await http.post(GENERATE, json=BODY)
    declared = decode_header(response.headers["PAYMENT-REQUIRED"])["extensions"]["payment-identifier"]
    assert declared["info"] == {"required": False} and "schema" in declared


async def test_a_resigned_retry_under_the_same_id_returns_the_same_job(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        accepted = await challenge(http)
        first = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id(ID))},
        )
        # The client lost the answer and signed a NEW authorization (new nonce) under the same id.
        retry = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id(ID))},
        )
        other_request = await http.post(
            GENERATE,
            json={"prompt": "something else"},
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id(ID))},
        )
        bad_id = await http.post(
            GENERATE,
            json=BODY,
            headers={
                "PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id("short"))
            },
        )
    assert first.status_code == retry.status_code == 200
    assert retry.json()["jobId"] == first.json()["jobId"]
    assert other_request.status_code == 409
    assert bad_id.status_code == 400 and bad_id.json()["code"] == "invalid_payload"
    assert len(await transfers_from(devnet, payer.address)) == 1


async def test_an_id_whose_payment_failed_can_pay_again(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 10_000)  # too little for $0.067
    async with paid_server.client() as http:
        accepted = await challenge(http)
        refused = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id(ID))},
        )
        await devnet.fund(payer.address, 1_000_000)
        paid = await http.post(
            GENERATE,
            json=BODY,
            headers={"PAYMENT-SIGNATURE": payment_header(devnet, payer, accepted, extensions=with_id(ID))},
        )
    assert refused.status_code == 402 and refused.json()["code"] == "insufficient_funds"
    assert paid.status_code == 200, paid.text
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert json.loads(base64.b64decode(paid.headers["PAYMENT-RESPONSE"]))["success"] is True
