"""Fixtures for the SIWX tests: an injected clock, a fresh wallet, and the official client's signing path."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.extensions.sign_in_with_x import (
    create_siwx_client_hook,
    create_siwx_payload,
    encode_siwx_header,
)
from x402.schemas import PaymentRequired, PaymentRequiredContext

from studio402.auth.siwx import SiwxVerifier
from tests.siwx_support import message_fields

PUBLIC_URL = "http://127.0.0.1:8402"
CHAIN_ID = 31337
JOB_URL = f"{PUBLIC_URL}/api/jobs/j1"


class FakeClock:
    """A settable UTC clock; tests move it instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def decode_fields(header: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(header))
    return decoded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))


@pytest.fixture
def account() -> LocalAccount:
    acct: LocalAccount = Account.create()
    return acct


@pytest.fixture
def verifier(clock: FakeClock) -> SiwxVerifier:
    return SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock)


async def answer_challenge(verifier: SiwxVerifier, request_url: str, signer: LocalAccount) -> str:
    """What the official Python client sends back after our 402 (its own hook, unchanged)."""
    required = PaymentRequired.model_validate(verifier.payment_required_body(request_url))
    hook = create_siwx_client_hook(signer)
    result = await hook(PaymentRequiredContext(payment_required=required, request_url=request_url))
    assert result is not None, "the official client refused our challenge"
    header: str = result.headers["sign-in-with-x"]
    return header


async def sign_fields(info: dict[str, Any], signer: LocalAccount, request_url: str) -> str:
    """A header for arbitrary `info` fields, signed by the official client's payload builder."""
    payload = await create_siwx_payload(info, signer, request_url)
    header: str = encode_siwx_header(payload)
    return header


def base_info(now: datetime, uri: str = JOB_URL, **extra: Any) -> dict[str, Any]:
    """Challenge-like info (+ chainId/type) with issuedAt = now and a 5-minute expiry."""
    return message_fields(PUBLIC_URL, uri, CHAIN_ID, now, **extra)
