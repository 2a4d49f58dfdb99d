"""The official x402 SDK's facilitator behind its HTTP API (/verify, /settle), settling on the devnet with
its own gas-paying key: the remote facilitator an operator may configure instead of a settler key."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from fastapi import FastAPI, Request
from x402 import x402Facilitator
from x402.mechanisms.evm.exact.register import register_exact_evm_facilitator
from x402.mechanisms.evm.signers import FacilitatorWeb3Signer
from x402.schemas import PaymentPayload, PaymentRequirements


def facilitator_app(rpc_url: str, network: str, key: str) -> tuple[FastAPI, dict[str, int]]:
    facilitator = x402Facilitator()
    register_exact_evm_facilitator(facilitator, FacilitatorWeb3Signer(key, rpc_url), networks=network)
    app = FastAPI()
    calls = {"verify": 0, "settle": 0}

    def parse(body: dict[str, Any]) -> tuple[PaymentPayload, PaymentRequirements]:
        return (
            PaymentPayload.model_validate(body["paymentPayload"]),
            PaymentRequirements.model_validate(body["paymentRequirements"]),
        )

    @app.post("/verify")
    async def verify(request: Request) -> dict[str, Any]:
        calls["verify"] += 1
        result = await facilitator.verify(*parse(await request.json()))
        return result.model_dump(by_alias=True, exclude_none=True)

    @app.post("/settle")
    async def settle(request: Request) -> dict[str, Any]:
        calls["settle"] += 1
        result = await facilitator.settle(*parse(await request.json()))
        return result.model_dump(by_alias=True, exclude_none=True)

    assert Account.from_key(key).address
    return app, calls
