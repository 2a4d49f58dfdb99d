"""Pure token helpers: digests and recovery agree with eth_account and the official x402 SDK client."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from x402.mechanisms.evm.exact.client import ExactEvmScheme
from x402.schemas import PaymentRequirements

from studio402.chain.contracts import load_token_artifact
from studio402.chain.token import (
    SECP256K1_N,
    EvmExactReason,
    TransferAuthorization,
    decode_bool,
    decode_transfer_log,
    decode_uint,
    eip712_domain_separator,
    encode_authorization_state,
    encode_balance_of,
    encode_cancel_authorization,
    encode_mint,
    encode_receive_with_authorization,
    encode_transfer,
    encode_transfer_with_authorization,
    recover_authorization_signer,
    revert_reason_to_x402,
    sign_digest,
    split_signature,
    transfer_with_authorization_digest,
)
from studio402.errors import MalformedPayment, PaymentRejected

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
CHAIN_ID = 31337


def _typed_data(auth: TransferAuthorization, name: str = "USD Coin", version: str = "2") -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": name, "version": version, "chainId": CHAIN_ID, "verifyingContract": TOKEN},
        "message": {
            "from": auth.from_address,
            "to": auth.to,
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": auth.nonce,
        },
    }


def _auth(payer: str, value: int = 10_000) -> TransferAuthorization:
    return TransferAuthorization(payer, PAY_TO, value, 0, int(time.time()) + 300, os.urandom(32))


SEPARATOR = eip712_domain_separator("USD Coin", "2", CHAIN_ID, TOKEN)


@pytest.mark.parametrize("value", [0, 1, 10_000, 2**256 - 1])
def test_digest_and_recovery_agree_with_eth_account(value: int) -> None:
    account = Account.create()
    auth = _auth(account.address, value)
    signable = encode_typed_data(full_message=_typed_data(auth))
    expected_digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    digest = transfer_with_authorization_digest(auth, SEPARATOR)
    assert digest == expected_digest
    signature = bytes(account.sign_message(signable).signature)
    assert recover_authorization_signer(digest, signature) == account.address
    assert Account.recover_message(signable, signature=signature) == account.address
    # And our own signer produces a signature eth_account accepts.
    ours = sign_digest(digest, "0x" + bytes(account.key).hex())
    assert Account.recover_message(signable, signature=ours) == account.address


def test_domain_separator_depends_on_every_domain_field() -> None:
    variants = {
        eip712_domain_separator("USD Coin", "2", CHAIN_ID, TOKEN),
        eip712_domain_separator("USDC", "2", CHAIN_ID, TOKEN),
        eip712_domain_separator("USD Coin", "1", CHAIN_ID, TOKEN),
        eip712_domain_separator("USD Coin", "2", 8453, TOKEN),
        eip712_domain_separator("USD Coin", "2", CHAIN_ID, PAY_TO),
    }
    assert len(variants) == 5


def test_x402_sdk_client_payload_recovers_to_the_payer() -> None:
    account = Account.create()
    requirements = PaymentRequirements(
        scheme="exact",
        network="eip155:31337",
        asset=TOKEN,
        amount="10000",
        pay_to=PAY_TO,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )
    payload = ExactEvmScheme(account).create_payment_payload(requirements)
    auth = TransferAuthorization.from_json(payload["authorization"])
    assert (auth.from_address, auth.to, auth.value) == (account.address, PAY_TO, 10_000)
    assert auth.to_json()["nonce"] == payload["authorization"]["nonce"]
    signature = bytes.fromhex(payload["signature"].removeprefix("0x"))
    digest = transfer_with_authorization_digest(auth, SEPARATOR)
    assert recover_authorization_signer(digest, signature) == account.address
    # Another domain (the SDK's view of a different token name) must not recover to the payer.
    other = eip712_domain_separator("USDC", "2", CHAIN_ID, TOKEN)
    assert recover_authorization_signer(transfer_with_authorization_digest(auth, other), signature) != (
        account.address
    )


def _signed() -> tuple[bytes, bytes, str]:
    account = Account.create()
    digest = transfer_with_authorization_digest(_auth(account.address), SEPARATOR)
    return digest, sign_digest(digest, bytes(account.key)), str(account.address)


def test_v_may_be_0_1_27_or_28() -> None:
    digest, signature, address = _signed()
    v = signature[64]
    assert v in (27, 28)
    assert recover_authorization_signer(digest, signature[:64] + bytes([v - 27])) == address
    assert split_signature(signature[:64] + bytes([v - 27]))[0] == v


@pytest.mark.parametrize("v", [2, 26, 29, 37])
def test_other_v_values_are_rejected(v: int) -> None:
    digest, signature, _ = _signed()
    with pytest.raises(PaymentRejected) as info:
        recover_authorization_signer(digest, signature[:64] + bytes([v]))
    assert info.value.code == EvmExactReason.SIGNATURE


def test_high_s_twin_is_rejected() -> None:
    digest, signature, _ = _signed()
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(PaymentRejected, match="high-s") as info:
        recover_authorization_signer(digest, twin)
    assert info.value.code == "invalid_exact_evm_payload_signature"


@pytest.mark.parametrize("bad", [b"", b"\x01" * 64, b"\x01" * 66, bytes(64) + b"\x1b"])
def test_malformed_signatures_are_rejected(bad: bytes) -> None:
    digest, _, _ = _signed()
    with pytest.raises(PaymentRejected):
        recover_authorization_signer(digest, bad)


def test_tampered_message_recovers_someone_else() -> None:
    account = Account.create()
    auth = _auth(account.address)
    signature = sign_digest(transfer_with_authorization_digest(auth, SEPARATOR), bytes(account.key))
    tampered = TransferAuthorization(
        auth.from_address, auth.to, auth.value + 1, 0, auth.valid_before, auth.nonce
    )
    digest = transfer_with_authorization_digest(tampered, SEPARATOR)
    assert recover_authorization_signer(digest, signature) != account.address


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "FiatTokenV2: authorization is not yet valid",
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        ("FiatTokenV2: authorization is expired", "invalid_exact_evm_payload_authorization_valid_before"),
        ("FiatTokenV2: authorization is used or canceled", "invalid_exact_evm_nonce_already_used"),
        ("FiatTokenV2: invalid signature", "invalid_exact_evm_payload_signature"),
        ("ECRecover: invalid signature 's' value", "invalid_exact_evm_payload_signature"),
        ("ERC20: transfer amount exceeds balance", "insufficient_funds"),
        ("execution reverted: ERC20: transfer amount exceeds balance", "insufficient_funds"),
        ("Pausable: paused", "invalid_exact_evm_transaction_simulation_failed"),
        ("", "invalid_exact_evm_transaction_simulation_failed"),
    ],
)
def test_revert_reason_mapping(reason: str, expected: str) -> None:
    assert revert_reason_to_x402(reason) == expected


def _abi_selectors() -> dict[str, bytes]:
    out = {}
    for entry in load_token_artifact().abi:
        if entry.get("type") == "function":
            types = ",".join(i["type"] for i in entry["inputs"])
            out[entry["name"]] = keccak(text=f"{entry['name']}({types})")[:4]
    return out


def test_calldata_targets_functions_of_our_token() -> None:
    selectors = _abi_selectors()
    auth = _auth(PAY_TO)
    _, signature, _ = _signed()
    encoded = {
        "balanceOf": encode_balance_of(PAY_TO),
        "authorizationState": encode_authorization_state(PAY_TO, auth.nonce),
        "transferWithAuthorization": encode_transfer_with_authorization(auth, signature),
        "receiveWithAuthorization": encode_receive_with_authorization(auth, signature),
        "cancelAuthorization": encode_cancel_authorization(PAY_TO, auth.nonce, signature),
        "transfer": encode_transfer(PAY_TO, 5),
        "mint": encode_mint(PAY_TO, 5),
    }
    for name, data in encoded.items():
        assert data[:4] == selectors[name], name
    # Circle's well-known selector, so the SDK's ABI and ours hit the same function.
    assert encoded["transferWithAuthorization"][:4].hex() == "e3ee160e"


def test_transfer_with_authorization_calldata_layout() -> None:
    auth = _auth(PAY_TO, 123)
    _, signature, _ = _signed()
    words = encode_transfer_with_authorization(auth, signature)[4:]
    assert len(words) == 9 * 32
    assert int.from_bytes(words[64:96], "big") == 123
    assert words[160:192] == auth.nonce
    assert int.from_bytes(words[192:224], "big") == signature[64]
    assert words[224:256] + words[256:288] == signature[:64]


def test_decoders() -> None:
    assert decode_uint(abi_encode(["uint256"], [42])) == 42
    assert decode_bool(abi_encode(["bool"], [True])) is True
    log = {
        "address": TOKEN.lower(),
        "topics": [
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
            "0x" + bytes(12).hex() + PAY_TO[2:].lower(),
            "0x" + bytes(12).hex() + TOKEN[2:].lower(),
        ],
        "data": "0x" + (7).to_bytes(32, "big").hex(),
        "transactionHash": "0xab",
        "logIndex": "0x2",
        "blockNumber": "0x10",
    }
    event = decode_transfer_log(log)
    assert event is not None
    assert (event.token, event.sender, event.receiver, event.value) == (TOKEN, PAY_TO, TOKEN, 7)
    assert (event.log_index, event.block_number) == (2, 16)
    assert decode_transfer_log({**log, "topics": log["topics"][:1]}) is None


@pytest.mark.parametrize(
    "patch",
    [{"nonce": "0x1234"}, {"value": "-1"}, {"from": "not an address"}, {"validBefore": "soon"}, {"to": None}],
)
def test_malformed_authorization_json(patch: dict[str, Any]) -> None:
    good = _auth(PAY_TO).to_json()
    with pytest.raises(MalformedPayment):
        TransferAuthorization.from_json({**good, **patch})
    with pytest.raises(MalformedPayment):
        TransferAuthorization.from_json({k: v for k, v in good.items() if k != "nonce"})


def test_recovery_speed_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Measures (never asserts) one digest + recovery, the off-chain part of verifying a payment."""
    digest, signature, address = _signed()
    auth = _auth(address)
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        recover_authorization_signer(digest, signature)
    recover_ms = (time.perf_counter() - started) * 1000 / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        transfer_with_authorization_digest(auth, SEPARATOR)
    digest_ms = (time.perf_counter() - started) * 1000 / rounds
    with capsys.disabled():
        print(f"\n[measure] recover_authorization_signer {recover_ms:.3f} ms, digest {digest_ms:.3f} ms")
    assert recover_authorization_signer(digest, signature) == address
