"""build_message must produce the bytes the official clients sign, for every optional-field combination."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_account.signers.local import LocalAccount
from x402.extensions.sign_in_with_x import format_siwe_message

from studio402.auth.evm_signature import personal_sign_hash, recover_address
from studio402.auth.siwx import SiwxVerifier, build_message, parse_header
from studio402.errors import AuthError
from tests.siwx_support import encode_fields, iso

from .conftest import JOB_URL, FakeClock, base_info, decode_fields, sign_fields

STATEMENTS = [None, "Sign in to poll jobs", "Punctuation: -._~:/?#[]@!$&'()*+,;= ok"]
REQUEST_IDS = [None, "req-42", ""]
RESOURCES: list[list[str] | None] = [None, [], [JOB_URL], [JOB_URL, "https://cdn.example/a?b=c#d"]]
COMBOS = list(itertools.product(STATEMENTS, [False, True], [False, True], REQUEST_IDS, RESOURCES))


def _combo_info(clock: FakeClock, combo: tuple[Any, ...]) -> dict[str, Any]:
    statement, with_expiry, with_not_before, request_id, resources = combo
    now = clock()
    info = base_info(now, statement=statement, requestId=request_id)
    info.pop("resources")
    if resources is not None:
        info["resources"] = resources
    if not with_expiry:
        info.pop("expirationTime")
    if with_not_before:
        info["notBefore"] = iso(now - timedelta(seconds=5))
    return info


@pytest.mark.parametrize("combo", COMBOS, ids=[f"c{i}" for i in range(len(COMBOS))])
async def test_message_matches_official_rendering_and_verifies(
    combo: tuple[Any, ...], clock: FakeClock, account: LocalAccount, verifier: SiwxVerifier
) -> None:
    header = await sign_fields(_combo_info(clock, combo), account, JOB_URL)
    fields = decode_fields(header)
    # The official client's rendering of what it put in the header, vs ours.
    assert build_message(parse_header(header)) == format_siwe_message(fields, fields["address"])
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()


def test_golden_eip4361_text() -> None:
    fields = {
        "domain": "localhost:8000",
        "address": "0xFE5bE40B02fc345E0154f2AA472880F503f56717",
        "statement": "Sign in to poll jobs",
        "uri": "http://localhost:8000/api/jobs/j1",
        "version": "1",
        "chainId": "eip155:31337",
        "type": "eip191",
        "nonce": "9fcb0466af37bd2e664ec195c1128b78",
        "issuedAt": "2026-11-21T22:32:31.128689Z",
        "expirationTime": "2026-11-21T22:37:31.128726Z",
        "resources": ["http://localhost:8000/api/jobs/j1"],
        "signature": "0x" + "00" * 65,
    }
    expected = (
        "localhost:8000 wants you to sign in with your Ethereum account:\n"
        "0xFE5bE40B02fc345E0154f2AA472880F503f56717\n"
        "\n"
        "Sign in to poll jobs\n"
        "\n"
        "URI: http://localhost:8000/api/jobs/j1\n"
        "Version: 1\n"
        "Chain ID: 31337\n"
        "Nonce: 9fcb0466af37bd2e664ec195c1128b78\n"
        "Issued At: 2026-11-21T22:32:31.128689Z\n"
        "Expiration Time: 2026-11-21T22:37:31.128726Z\n"
        "Resources:\n"
        "- http://localhost:8000/api/jobs/j1"
    )
    assert build_message(parse_header(encode_fields(fields))) == expected
    del fields["statement"]
    no_statement = expected.replace("\nSign in to poll jobs\n", "\n")
    assert "56717\n\n\nURI: " in no_statement
    assert build_message(parse_header(encode_fields(fields))) == no_statement


def test_non_evm_chain_has_no_eip4361_text(clock: FakeClock) -> None:
    fields = base_info(clock(), chainId="solana:abc123")
    fields.update(address="0x" + "11" * 20, signature="0x")
    with pytest.raises(AuthError) as err:
        build_message(parse_header(encode_fields(fields)))
    assert err.value.code == "siwx_unsupported_chain"


def test_personal_sign_hash_matches_eth_account(account: LocalAccount) -> None:
    text = "héllo\nwörld"  # multi-byte: the EIP-191 length prefix counts bytes, not characters
    expected = _hash_eip191_message(encode_defunct(text=text))
    assert personal_sign_hash(text) == expected
    signed = account.sign_message(encode_defunct(text=text))
    assert recover_address(expected, bytes(signed.signature)) == account.address.lower()
    low_v = bytes(signed.signature[:64]) + bytes((signed.signature[64] - 27,))
    assert recover_address(expected, low_v) == account.address.lower()


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 65, b"\x01" * 64 + b"\x1d", b"\xff" * 64 + b"\x1b", b"\x01" * 66],
    ids=["empty", "zeros", "bad-v", "s-out-of-range", "66-bytes"],
)
def test_recover_refuses_unusable_signatures(signature: bytes) -> None:
    assert recover_address(b"\x07" * 32, signature) is None
