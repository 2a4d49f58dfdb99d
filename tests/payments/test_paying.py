"""Paying a generate route on the real devnet: the happy path and every refusal."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import SettleResponse

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


async def test_official_python_client_pays_and_gets_a_job(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 5_000_000)
    pay_to_before = await devnet.balance_of(devnet.info.pay_to)
    client = x402Client()
    client.register("eip155:*", ExactEvmScheme(EthAccountSigner(Account.from_key(payer.key))))
    client.set_spend_controls(False)
    async with x402HttpxClient(client, base_url=paid_server.base, timeout=60) as http:
        response = await http.post(GENERATE, json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending" and body["jobId"].startswith("job_") and body["success"] is True
    receipt = SettleResponse.model_validate(decode_header(response.headers["PAYMENT-RESPONSE"]))
    assert receipt.success and receipt.payer == payer.address.lower() and receipt.transaction.startswith("0x")
    assert await devnet.balance_of(payer.address) == 5_000_000 - 67_000
    assert await devnet.balance_of(devnet.info.pay_to) == pay_to_before + 67_000
    assert await transfers_from(devnet, payer.address) == [(devnet.info.pay_to, 67_000, receipt.transaction)]


async def test_replayed_payment_returns_the_same_job_and_charges_once(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        first = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        second = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        same_body_other_order = await http.post(
            GENERATE, json={**BODY, "imageSize": "1K"}, headers={"PAYMENT-SIGNATURE": header}
        )
    assert first.status_code == second.status_code == same_body_other_order.status_code == 200
    assert first.json()["jobId"] == second.json()["jobId"] == same_body_other_order.json()["jobId"]
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert await devnet.balance_of(payer.address) == 1_000_000 - 67_000


async def test_same_payment_for_another_request_is_409(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        first = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        other = await http.post(
            GENERATE, json={"prompt": "something else"}, headers={"PAYMENT-SIGNATURE": header}
        )
    assert first.status_code == 200
    assert other.status_code == 409 and other.json()["code"] == "payment_reused"
    assert len(await transfers_from(devnet, payer.address)) == 1


async def test_twenty_concurrent_requests_with_one_signature_make_one_job(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        responses = await asyncio.gather(
            *(http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header}) for _ in range(20))
        )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["jobId"] for r in responses}) == 1
    assert len(await transfers_from(devnet, payer.address)) == 1
    assert await devnet.balance_of(payer.address) == 1_000_000 - 67_000


def _tweak(accepted: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**accepted, **changes}


REFUSALS: list[tuple[str, Any, str]] = [
    (
        "wrong amount",
        lambda a: {"accepted": _tweak(a, amount="1"), "value": 1},
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ),
    (
        "value below the price",
        lambda a: {"value": int(a["amount"]) - 1},
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ),
    (
        "wrong payTo",
        lambda a: {"to": "0x000000000000000000000000000000000000dEaD"},
        "invalid_exact_evm_payload_recipient_mismatch",
    ),
    (
        "wrong payTo in accepted",
        lambda a: {"accepted": _tweak(a, payTo="0x000000000000000000000000000000000000dEaD")},
        "invalid_exact_evm_payload_recipient_mismatch",
    ),
    (
        "wrong asset",
        lambda a: {"accepted": _tweak(a, asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")},
        "invalid_payment_requirements",
    ),
    ("wrong network", lambda a: {"accepted": _tweak(a, network="eip155:8453")}, "invalid_network"),
    (
        "expired",
        lambda a: {"valid_before": int(time.time()) - 10},
        "invalid_exact_evm_payload_authorization_valid_before",
    ),
    (
        "not yet valid",
        lambda a: {"valid_after": int(time.time()) + 600},
        "invalid_exact_evm_payload_authorization_valid_after",
    ),
    (
        "wrong EIP-712 domain",
        lambda a: {"accepted": _tweak(a, extra={"name": "USDC", "version": "2"})},
        "invalid_payment_requirements",
    ),
]


@pytest.mark.parametrize(("label", "tweak", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refused_payments_get_402_with_reason_and_move_nothing(
    paid_server: PaidServer, label: str, tweak: Any, reason: str
) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        accepted = await challenge(http)
        changes = tweak(accepted)
        header = payment_header(devnet, payer, changes.pop("accepted", accepted), **changes)
        response = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 402, response.text
    assert response.json()["code"] == reason
    fresh = decode_header(response.headers["PAYMENT-REQUIRED"])
    assert fresh["error"] == reason and fresh["accepts"][0]["amount"] == accepted["amount"]
    assert await transfers_from(devnet, payer.address) == []


async def test_bad_signature_and_insufficient_balance(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer, poor = await new_payer(devnet, 1_000_000), await new_payer(devnet, 10_000)
    async with paid_server.client() as http:
        accepted = await challenge(http)
        header = payment_header(devnet, payer, accepted)
        data = decode_header(header)
        signature = bytearray.fromhex(data["payload"]["signature"][2:])
        signature[10] ^= 0xFF
        data["payload"]["signature"] = "0x" + signature.hex()
        tampered = base64.b64encode(json.dumps(data).encode()).decode()
        bad_sig = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": tampered})
        too_poor = await http.post(
            GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": payment_header(devnet, poor, accepted)}
        )
    assert bad_sig.status_code == 402 and bad_sig.json()["code"] == "invalid_exact_evm_payload_signature"
    assert too_poor.status_code == 402 and too_poor.json()["code"] == "insufficient_funds"
    assert await transfers_from(devnet, payer.address) == []
    assert await transfers_from(devnet, poor.address) == []


@pytest.mark.parametrize("garbage", ["%%%", "bm90IGpzb24=", "eyJ4NDAyVmVyc2lvbiI6IDJ9", "W10="])
async def test_malformed_payment_header_is_400(paid_server: PaidServer, garbage: str) -> None:
    async with paid_server.client() as http:
        response = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": garbage})
    assert response.status_code == 400, response.text
    assert response.json()["code"] in {"invalid_payload", "invalid_x402_version"}


async def test_invalid_body_with_a_payment_is_400_and_not_charged(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        response = await http.post(GENERATE, json={"prompt": ""}, headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 400
    assert await transfers_from(devnet, payer.address) == []
