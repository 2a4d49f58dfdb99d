"""SiwxVerifier: accepts what the official client signs for our challenge, rejects the rest by code."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_account.signers.local import LocalAccount

from studio402.auth.siwx import SIWX_HEADER, SiwxCode, SiwxVerifier, build_message, parse_header
from studio402.auth.siwx_proof import MAX_HEADER_BYTES
from studio402.errors import AuthError, ChainError, ConfigError
from tests.siwx_support import encode_fields, iso

from .conftest import (
    CHAIN_ID,
    JOB_URL,
    PUBLIC_URL,
    FakeClock,
    answer_challenge,
    base_info,
    decode_fields,
    sign_fields,
)


async def rejection(verifier: SiwxVerifier, header: str | None, request_url: str = JOB_URL) -> str:
    with pytest.raises(AuthError) as err:
        await verifier.verify(header, request_url=request_url)
    return str(err.value.code)


def test_header_name_and_codes_are_stable() -> None:
    assert SIWX_HEADER == "SIGN-IN-WITH-X"
    assert {c.value for c in SiwxCode} == {
        "siwx_missing", "siwx_malformed", "siwx_wrong_domain", "siwx_wrong_uri", "siwx_unsupported_chain",
        "siwx_expired", "siwx_not_yet_valid", "siwx_issued_in_future", "siwx_too_old", "siwx_bad_signature",
    }  # fmt: skip


async def test_official_client_answer_returns_the_signer(
    verifier: SiwxVerifier, account: LocalAccount
) -> None:
    header = await answer_challenge(verifier, JOB_URL, account)
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()


async def test_query_string_is_part_of_the_bound_uri(verifier: SiwxVerifier, account: LocalAccount) -> None:
    url = verifier.url_for("/api/jobs/j1", "wait=5&x=%20y")
    assert url == f"{PUBLIC_URL}/api/jobs/j1?wait=5&x=%20y"
    header = await answer_challenge(verifier, url, account)
    assert await verifier.verify(header, request_url=url) == account.address.lower()
    assert await rejection(verifier, header, f"{PUBLIC_URL}/api/jobs/j1?wait=6&x=%20y") == "siwx_wrong_uri"
    assert await rejection(verifier, header, JOB_URL) == "siwx_wrong_uri"


async def test_unpadded_and_urlsafe_base64_are_accepted(
    verifier: SiwxVerifier, account: LocalAccount
) -> None:
    header = await answer_challenge(verifier, JOB_URL, account)
    raw = base64.b64decode(header)
    for variant in (base64.urlsafe_b64encode(raw).decode().rstrip("="), header.rstrip("=")):
        assert await verifier.verify(variant, request_url=JOB_URL) == account.address.lower()


async def test_lowercase_address_in_header_is_accepted(
    verifier: SiwxVerifier, clock: FakeClock, account: LocalAccount
) -> None:
    fields = decode_fields(await sign_fields(base_info(clock()), account, JOB_URL))
    fields["address"] = fields["address"].lower()
    # The address is part of the signed text, so re-sign the lowercase variant.
    message = build_message(parse_header(encode_fields(fields)))
    fields["signature"] = "0x" + account.sign_message(encode_defunct(text=message)).signature.hex()
    assert await verifier.verify(encode_fields(fields), request_url=JOB_URL) == account.address.lower()


@pytest.mark.parametrize("header", [None, ""])
async def test_missing_header(verifier: SiwxVerifier, header: str | None) -> None:
    assert await rejection(verifier, header) == "siwx_missing"


async def test_other_domain_is_rejected(clock: FakeClock, account: LocalAccount) -> None:
    ours = SiwxVerifier("http://localhost:8402", supported_chain_ids=[CHAIN_ID], clock=clock)
    header = await answer_challenge(
        SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock), JOB_URL, account
    )
    assert await rejection(ours, header, "http://localhost:8402/api/jobs/j1") == "siwx_wrong_domain"


async def test_header_for_another_job_is_rejected(verifier: SiwxVerifier, account: LocalAccount) -> None:
    header = await answer_challenge(verifier, JOB_URL, account)
    assert await rejection(verifier, header, f"{PUBLIC_URL}/api/jobs/j2") == "siwx_wrong_uri"


async def test_request_url_of_another_origin_never_matches(clock: FakeClock, account: LocalAccount) -> None:
    # Even a caller passing a foreign request URL cannot make a foreign uri acceptable.
    evil = "http://evil.example/api/jobs/j1"
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock)
    header = await sign_fields(base_info(clock(), uri=evil, domain="evil.example"), account, evil)
    fields = decode_fields(header)
    fields["domain"] = "127.0.0.1:8402"
    assert await rejection(verifier, encode_fields(fields), evil) == "siwx_wrong_uri"


async def test_expired(verifier: SiwxVerifier, clock: FakeClock, account: LocalAccount) -> None:
    info = base_info(clock(), expirationTime=iso(clock() + timedelta(seconds=60)))
    header = await sign_fields(info, account, JOB_URL)
    clock.advance(59)
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()
    clock.advance(1)
    assert await rejection(verifier, header) == "siwx_expired"


async def test_not_yet_valid(verifier: SiwxVerifier, clock: FakeClock, account: LocalAccount) -> None:
    header = await sign_fields(
        base_info(clock(), notBefore=iso(clock() + timedelta(seconds=30))), account, JOB_URL
    )
    assert await rejection(verifier, header) == "siwx_not_yet_valid"
    clock.advance(30)
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()


async def test_issued_in_future_beyond_skew(
    verifier: SiwxVerifier, clock: FakeClock, account: LocalAccount
) -> None:
    within = await sign_fields(base_info(clock() + timedelta(seconds=60)), account, JOB_URL)
    assert await verifier.verify(within, request_url=JOB_URL) == account.address.lower()
    beyond = await sign_fields(base_info(clock() + timedelta(seconds=61)), account, JOB_URL)
    assert await rejection(verifier, beyond) == "siwx_issued_in_future"


async def test_too_old(clock: FakeClock, account: LocalAccount) -> None:
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock, max_age_seconds=120)
    header = await sign_fields(base_info(clock(), expirationTime=None), account, JOB_URL)
    clock.advance(120)
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()
    clock.advance(1)
    assert await rejection(verifier, header) == "siwx_too_old"


async def test_official_answer_goes_stale_after_five_minutes(
    verifier: SiwxVerifier, clock: FakeClock, account: LocalAccount
) -> None:
    header = await answer_challenge(verifier, JOB_URL, account)
    clock.advance(301)
    assert await rejection(verifier, header) == "siwx_too_old"


async def test_unsupported_chain(clock: FakeClock, account: LocalAccount) -> None:
    base_only = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[8453], clock=clock)
    header = await sign_fields(base_info(clock()), account, JOB_URL)
    assert await rejection(base_only, header) == "siwx_unsupported_chain"
    fields = decode_fields(header)
    for chain_id, sig_type in (
        ("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "ed25519"),
        ("eip155:08453", "eip191"),
    ):
        fields.update(chainId=chain_id, type=sig_type)
        assert await rejection(base_only, encode_fields(fields)) == "siwx_unsupported_chain"


async def test_tampered_signature(verifier: SiwxVerifier, account: LocalAccount) -> None:
    fields = decode_fields(await answer_challenge(verifier, JOB_URL, account))
    sig = bytearray.fromhex(fields["signature"][2:])
    sig[10] ^= 0x01
    fields["signature"] = "0x" + sig.hex()
    assert await rejection(verifier, encode_fields(fields)) == "siwx_bad_signature"
    fields["signature"] = "0x" + "ab" * 64  # wrong length
    assert await rejection(verifier, encode_fields(fields)) == "siwx_bad_signature"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("address", Account.create().address),
        ("nonce", "ffffffffffffffffffffffffffffffff"),
        ("statement", "Sign in to pay me"),
        ("resources", ["http://127.0.0.1:8402/api/jobs/other"]),
    ],
)
async def test_tampered_field_breaks_the_signature(
    verifier: SiwxVerifier, account: LocalAccount, key: str, value: Any
) -> None:
    fields = decode_fields(await answer_challenge(verifier, JOB_URL, account))
    fields[key] = value
    assert await rejection(verifier, encode_fields(fields)) == "siwx_bad_signature"


def _valid_fields(clock: FakeClock) -> dict[str, Any]:
    fields = base_info(clock())
    fields.update(address="0x" + "ab" * 20, signature="0x" + "00" * 65)
    return fields


MALFORMED_FIELD_CASES: list[tuple[str, Any]] = [
    ("domain", None),
    ("domain", "127.0.0.1:8402/x"),
    ("address", "0x1234"),
    ("address", 42),
    ("uri", ""),
    ("version", "2"),
    ("chainId", "31337"),
    ("type", "rsa"),
    ("nonce", "short"),
    ("nonce", "not-alnum-!!"),
    ("nonce", "a" * 129),  # it keys a credit spend's payment row (VARCHAR(128): PostgreSQL refuses more)
    ("issuedAt", "yesterday"),
    ("issuedAt", "2030-01-02T03:04:05"),  # no offset
    ("issuedAt", "2030-01-02T03:04:60Z"),
    ("expirationTime", 1700000000),
    ("notBefore", "2030-13-01T00:00:00Z"),
    ("statement", "two\nlines"),
    ("statement", ""),
    ("requestId", "a\rb"),
    ("resources", "http://127.0.0.1:8402/a"),
    ("resources", ["ok", "with space"]),
    ("signature", "0xzz"),
    ("signature", "abcd"),
    ("signatureScheme", "rsa"),
]


@pytest.mark.parametrize(("key", "value"), MALFORMED_FIELD_CASES)
async def test_malformed_fields(verifier: SiwxVerifier, clock: FakeClock, key: str, value: Any) -> None:
    fields = _valid_fields(clock)
    fields[key] = value
    assert await rejection(verifier, encode_fields(fields)) == "siwx_malformed"


@pytest.mark.parametrize(
    "header",
    [
        "!!!not base64!!!",
        "é",
        base64.b64encode(b"\xff\xfe not utf-8").decode(),
        base64.b64encode(b"{not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'"just a string"').decode(),
        "A" * (MAX_HEADER_BYTES + 1),
    ],
    ids=["alphabet", "non-ascii", "not-utf8", "not-json", "array", "string", "oversize"],
)
async def test_malformed_encoding(verifier: SiwxVerifier, header: str) -> None:
    assert await rejection(verifier, header) == "siwx_malformed"


async def test_oversize_is_refused_before_decoding(verifier: SiwxVerifier, clock: FakeClock) -> None:
    fields = _valid_fields(clock)
    fields["requestId"] = "x" * MAX_HEADER_BYTES
    header = encode_fields(fields)
    assert len(header) > MAX_HEADER_BYTES
    assert await rejection(verifier, header) == "siwx_malformed"


@dataclass
class FakeContractChecker:
    """Stands in for the chain layer: one smart wallet that approves one message hash."""

    wallet: str
    approved_hash: bytes
    answer: bool = True
    calls: list[tuple[int, str, bytes, bytes]] = field(default_factory=list)

    async def is_valid_signature(
        self, chain_id: int, address: str, message_hash: bytes, signature: bytes
    ) -> bool:
        self.calls.append((chain_id, address, message_hash, signature))
        return self.answer and address == self.wallet and message_hash == self.approved_hash


def _smart_wallet_header(clock: FakeClock, wallet: str, signature: str) -> tuple[str, bytes]:
    fields = base_info(clock())
    fields.update(address=wallet, signature=signature, signatureScheme="eip1271")
    header = encode_fields(fields)
    message = build_message(parse_header(header))
    return header, _hash_eip191_message(encode_defunct(text=message))


@pytest.mark.parametrize(
    "signature", ["0x" + "5a" * 200, "0x" + "11" * 65, "0x"], ids=["long", "65", "empty"]
)
async def test_smart_wallet_goes_through_the_eip1271_port(clock: FakeClock, signature: str) -> None:
    wallet = Account.create().address
    header, message_hash = _smart_wallet_header(clock, wallet, signature)
    checker = FakeContractChecker(wallet=wallet, approved_hash=message_hash)
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock, contract_checker=checker)
    assert await verifier.verify(header, request_url=JOB_URL) == wallet.lower()
    assert checker.calls == [(CHAIN_ID, wallet, message_hash, bytes.fromhex(signature[2:]))]


async def test_smart_wallet_refused_by_contract_or_without_checker(clock: FakeClock) -> None:
    wallet = Account.create().address
    header, message_hash = _smart_wallet_header(clock, wallet, "0x" + "5a" * 100)
    checker = FakeContractChecker(wallet=wallet, approved_hash=message_hash, answer=False)
    with_checker = SiwxVerifier(
        PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock, contract_checker=checker
    )
    assert await rejection(with_checker, header) == "siwx_bad_signature"
    assert len(checker.calls) == 1
    without = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock)
    assert await rejection(without, header) == "siwx_bad_signature"


async def test_eoa_signature_never_asks_the_chain(clock: FakeClock, account: LocalAccount) -> None:
    checker = FakeContractChecker(wallet="0x", approved_hash=b"")
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock, contract_checker=checker)
    header = await answer_challenge(verifier, JOB_URL, account)
    assert await verifier.verify(header, request_url=JOB_URL) == account.address.lower()
    assert checker.calls == []


async def test_chain_failure_is_not_an_auth_failure(clock: FakeClock) -> None:
    class BrokenChecker:
        async def is_valid_signature(
            self, chain_id: int, address: str, message_hash: bytes, signature: bytes
        ) -> bool:
            raise ChainError("rpc down")

    wallet = Account.create().address
    header, _ = _smart_wallet_header(clock, wallet, "0x" + "5a" * 100)
    verifier = SiwxVerifier(
        PUBLIC_URL, supported_chain_ids=[CHAIN_ID], clock=clock, contract_checker=BrokenChecker()
    )
    with pytest.raises(ChainError):
        await verifier.verify(header, request_url=JOB_URL)


def test_checks_run_in_a_stable_order(verifier: SiwxVerifier, clock: FakeClock) -> None:
    # Wrong domain AND wrong uri AND expired: the first failing check names the error.
    fields = _valid_fields(clock)
    fields.update(domain="other.example", uri="http://other.example/x", expirationTime=iso(clock()))
    with pytest.raises(AuthError) as err:
        verifier.check_claims(parse_header(encode_fields(fields)), request_url=JOB_URL)
    assert err.value.code == SiwxCode.WRONG_DOMAIN
    assert json.dumps({"code": err.value.code}) == '{"code": "siwx_wrong_domain"}'


@pytest.mark.parametrize(
    ("public_url", "domain", "origin", "job_url"),
    [
        ("http://127.0.0.1:8402", "127.0.0.1:8402", "http://127.0.0.1:8402", "http://127.0.0.1:8402/api/jobs/j1"),
        ("https://Studio.Example.com:443/", "studio.example.com", "https://studio.example.com",
         "https://studio.example.com/api/jobs/j1"),
        ("http://example.com:80/gw/", "example.com", "http://example.com", "http://example.com/gw/api/jobs/j1"),
        ("http://[::1]:8402", "[::1]:8402", "http://[::1]:8402", "http://[::1]:8402/api/jobs/j1"),
    ],
)  # fmt: skip
def test_public_url_normalisation(public_url: str, domain: str, origin: str, job_url: str) -> None:
    verifier = SiwxVerifier(public_url, supported_chain_ids=[CHAIN_ID])
    assert (verifier.domain, verifier.origin) == (domain, origin)
    assert verifier.url_for("/api/jobs/j1") == job_url


@pytest.mark.parametrize(
    ("public_url", "kwargs"),
    [
        ("127.0.0.1:8402", {}),
        ("ftp://example.com", {}),
        ("http://user:pw@example.com", {}),
        ("http://example.com/?q=1", {}),
        (PUBLIC_URL, {"supported_chain_ids": []}),
        (PUBLIC_URL, {"statement": 'quote " is not allowed'}),
    ],
)
def test_bad_configuration(public_url: str, kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"supported_chain_ids": [CHAIN_ID], **kwargs}
    with pytest.raises(ConfigError):
        SiwxVerifier(public_url, **options)
