"""Sign in with Solana: what the official x402 client signs for a Solana key verifies, the rest is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from solders.keypair import Keypair
from x402.extensions.sign_in_with_x.solana import SOLANA_DEVNET, SOLANA_MAINNET, format_siws_message
from x402.mechanisms.svm.signers import KeypairSigner

from studio402.auth.siws import build_siws_message
from studio402.auth.siwx import SiwxVerifier, parse_header
from studio402.errors import AuthError
from tests.siwx_support import encode_fields, iso

from .conftest import CHAIN_ID, JOB_URL, PUBLIC_URL, FakeClock, answer_challenge, decode_fields, sign_fields


@pytest.fixture
def verifier(clock: FakeClock) -> SiwxVerifier:
    return SiwxVerifier(
        PUBLIC_URL, supported_chain_ids=[CHAIN_ID], solana_networks=[SOLANA_DEVNET], clock=clock
    )


@pytest.fixture
def signer() -> KeypairSigner:
    return KeypairSigner(Keypair())


def solana_info(clock: FakeClock, **extra: Any) -> dict[str, Any]:
    """Challenge-like info on the Solana devnet, issuedAt = now, 5-minute expiry."""
    info = {
        "domain": "127.0.0.1:8402",
        "uri": JOB_URL,
        "version": "1",
        "chainId": SOLANA_DEVNET,
        "type": "ed25519",
        "nonce": "abcdef0123456789",
        "issuedAt": iso(clock.now),
        "expirationTime": iso(clock.now + timedelta(minutes=5)),
    }
    return info | extra


async def rejection(verifier: SiwxVerifier, header: str, request_url: str = JOB_URL) -> str:
    with pytest.raises(AuthError) as err:
        await verifier.verify(header, request_url=request_url)
    return str(err.value.code)


def test_the_challenge_lists_the_solana_network(verifier: SiwxVerifier) -> None:
    chains = verifier.challenge_extension(JOB_URL)["supportedChains"]
    assert chains == [
        {"chainId": f"eip155:{CHAIN_ID}", "type": "eip191"},
        {"chainId": SOLANA_DEVNET, "type": "ed25519"},
    ]


async def test_the_official_client_answer_returns_the_base58_key(
    verifier: SiwxVerifier, signer: KeypairSigner
) -> None:
    header = await answer_challenge(verifier, JOB_URL, signer)  # type: ignore[arg-type]  # any signer
    assert decode_fields(header)["chainId"] == SOLANA_DEVNET
    assert await verifier.verify(header, request_url=JOB_URL) == signer.address


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"statement": "Sign in to read your jobs"},
        {
            "statement": "Hi",
            "notBefore": "2030-01-02T03:00:00Z",
            "requestId": "r-1",
            "resources": [JOB_URL, "x:y"],
        },
        {"requestId": "", "resources": []},  # empty ones are left out of the text
    ],
)
async def test_the_message_is_the_sdk_text_and_verifies(
    verifier: SiwxVerifier, signer: KeypairSigner, clock: FakeClock, extra: dict[str, Any]
) -> None:
    header = await sign_fields(solana_info(clock, **extra), signer, JOB_URL)  # type: ignore[arg-type]
    proof = parse_header(header)
    assert build_siws_message(proof) == format_siws_message(decode_fields(header), signer.address)
    assert await verifier.verify(header, request_url=JOB_URL) == signer.address


async def test_refusals(verifier: SiwxVerifier, signer: KeypairSigner, clock: FakeClock) -> None:
    async def header(**extra: Any) -> str:
        return await sign_fields(solana_info(clock, **extra), signer, JOB_URL)  # type: ignore[arg-type]

    fields = decode_fields(await header())
    other = str(Keypair().pubkey())
    assert await rejection(verifier, encode_fields(fields | {"address": other})) == "siwx_bad_signature"
    assert (
        await rejection(verifier, encode_fields(fields | {"nonce": "abcdef0123456780"}))
        == "siwx_bad_signature"
    )
    assert await rejection(verifier, encode_fields(fields | {"signature": "1" * 64})) == "siwx_bad_signature"
    assert (
        await rejection(verifier, encode_fields(fields | {"domain": "evil.example"})) == "siwx_wrong_domain"
    )
    assert await rejection(verifier, await header(), f"{PUBLIC_URL}/api/jobs/j2") == "siwx_wrong_uri"
    assert await rejection(verifier, await header(type="eip191")) == "siwx_unsupported_chain"
    assert await rejection(verifier, await header(chainId=SOLANA_MAINNET)) == "siwx_unsupported_chain"
    assert (
        await rejection(verifier, encode_fields(fields | {"address": "0x" + "ab" * 20})) == "siwx_malformed"
    )
    assert (
        await rejection(verifier, encode_fields(fields | {"signature": "0x" + "ab" * 64})) == "siwx_malformed"
    )
    valid = await header(expirationTime=iso(clock.now + timedelta(seconds=60)))
    clock.advance(61)
    assert await rejection(verifier, valid) == "siwx_expired"


async def test_solana_is_refused_when_no_solana_network_is_configured(
    clock: FakeClock, signer: KeypairSigner
) -> None:
    evm_only = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock)
    header = await sign_fields(solana_info(clock), signer, JOB_URL)  # type: ignore[arg-type]
    assert await rejection(evm_only, header) == "siwx_unsupported_chain"
    assert {c["type"] for c in evm_only.challenge_extension(JOB_URL)["supportedChains"]} == {"eip191"}


def test_a_solana_only_verifier_is_allowed(clock: FakeClock) -> None:
    only = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[], solana_networks=[SOLANA_DEVNET], clock=clock)
    assert only.challenge_extension(JOB_URL)["supportedChains"] == [
        {"chainId": SOLANA_DEVNET, "type": "ed25519"}
    ]
