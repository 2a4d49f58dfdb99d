"""Pure helpers for USDC-like EIP-3009 tokens: calldata, log decoders, revert reasons. The EIP-712 codec
(authorizations, digests, signature recovery) lives in `payments.eip3009` and is re-exported here.

No I/O. Addresses come back EIP-55 checksummed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from studio402.payments.eip3009 import (
    CANCEL_AUTHORIZATION_TYPEHASH,
    DOMAIN_TYPEHASH,
    RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
    SECP256K1_N,
    TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
    TransferAuthorization,
    authorization_digest,
    cancel_authorization_digest,
    eip712_domain_separator,
    recover_authorization_signer,
    sign_digest,
    split_signature,
    to_checksum_address,
    transfer_with_authorization_digest,
)

__all__ = [
    "CANCEL_AUTHORIZATION_TYPEHASH",
    "DOMAIN_TYPEHASH",
    "RECEIVE_WITH_AUTHORIZATION_TYPEHASH",
    "SECP256K1_N",
    "TRANSFER_WITH_AUTHORIZATION_TYPEHASH",
    "TransferAuthorization",
    "authorization_digest",
    "cancel_authorization_digest",
    "eip712_domain_separator",
    "recover_authorization_signer",
    "sign_digest",
    "split_signature",
    "to_checksum_address",
    "transfer_with_authorization_digest",
]


TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
AUTHORIZATION_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()
AUTHORIZATION_CANCELED_TOPIC = "0x" + keccak(text="AuthorizationCanceled(address,bytes32)").hex()


_AUTH_ARGS = ["address", "address", "uint256", "uint256", "uint256", "bytes32", "uint8", "bytes32", "bytes32"]


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


_BALANCE_OF = _selector("balanceOf(address)")
_AUTHORIZATION_STATE = _selector("authorizationState(address,bytes32)")
_TRANSFER_WITH_AUTHORIZATION = _selector(f"transferWithAuthorization({','.join(_AUTH_ARGS)})")
_RECEIVE_WITH_AUTHORIZATION = _selector(f"receiveWithAuthorization({','.join(_AUTH_ARGS)})")
_CANCEL_AUTHORIZATION = _selector("cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)")
_TRANSFER = _selector("transfer(address,uint256)")
_MINT = _selector("mint(address,uint256)")


class EvmExactReason(StrEnum):
    """x402 `exact` EVM error reasons a token revert maps to."""

    VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
    VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
    NONCE_USED = "invalid_exact_evm_nonce_already_used"
    SIGNATURE = "invalid_exact_evm_payload_signature"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    SIMULATION_FAILED = "invalid_exact_evm_transaction_simulation_failed"


@dataclass(frozen=True, slots=True)
class TransferEvent:
    token: str
    sender: str
    receiver: str
    value: int
    tx_hash: str
    log_index: int
    block_number: int


# -- calldata -------------------------------------------------------------------------------------------


def encode_balance_of(owner: str) -> bytes:
    return _BALANCE_OF + abi_encode(["address"], [owner])


def encode_authorization_state(authorizer: str, nonce: bytes) -> bytes:
    return _AUTHORIZATION_STATE + abi_encode(["address", "bytes32"], [authorizer, nonce])


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def _encode_with_authorization(selector: bytes, auth: TransferAuthorization, signature: bytes) -> bytes:
    """All nine arguments are static ABI types: each is one 32-byte word (faster than eth_abi)."""
    v, r, s = split_signature(signature)
    return b"".join(
        (
            selector,
            _address_word(auth.from_address),
            _address_word(auth.to),
            _word(auth.value),
            _word(auth.valid_after),
            _word(auth.valid_before),
            auth.nonce,
            _word(v),
            r,
            s,
        )
    )


def encode_transfer_with_authorization(auth: TransferAuthorization, signature: bytes) -> bytes:
    return _encode_with_authorization(_TRANSFER_WITH_AUTHORIZATION, auth, signature)


def encode_receive_with_authorization(auth: TransferAuthorization, signature: bytes) -> bytes:
    return _encode_with_authorization(_RECEIVE_WITH_AUTHORIZATION, auth, signature)


def encode_cancel_authorization(authorizer: str, nonce: bytes, signature: bytes) -> bytes:
    v, r, s = split_signature(signature)
    args = [authorizer, nonce, v, r, s]
    return _CANCEL_AUTHORIZATION + abi_encode(["address", "bytes32", "uint8", "bytes32", "bytes32"], args)


def encode_transfer(to: str, value: int) -> bytes:
    return _TRANSFER + abi_encode(["address", "uint256"], [to, value])


def encode_mint(to: str, value: int) -> bytes:
    return _MINT + abi_encode(["address", "uint256"], [to, value])


def encode_deploy(bytecode: bytes, name: str, symbol: str, version: str, decimals: int) -> bytes:
    """Creation code + ABI-encoded constructor(name, symbol, version, decimals)."""
    return bytecode + abi_encode(["string", "string", "string", "uint8"], [name, symbol, version, decimals])


# -- decoding -------------------------------------------------------------------------------------------


def decode_uint(data: bytes) -> int:
    return int(abi_decode(["uint256"], data)[0])


def decode_bool(data: bytes) -> bool:
    return bool(abi_decode(["bool"], data)[0])


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


def decode_transfer_log(log: Mapping[str, Any]) -> TransferEvent | None:
    """The ERC-20 Transfer in an eth_getLogs / receipt log entry; None for any other log."""
    topics = log.get("topics") or []
    if len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC:
        return None
    return TransferEvent(
        token=to_checksum_address(str(log["address"])),
        sender=_topic_address(str(topics[1])),
        receiver=_topic_address(str(topics[2])),
        value=int(str(log["data"]), 16),
        tx_hash=str(log.get("transactionHash", "")),
        log_index=int(str(log.get("logIndex", "0x0")), 16),
        block_number=int(str(log.get("blockNumber", "0x0")), 16),
    )


def transfers_in_receipt(receipt: Mapping[str, Any], token: str) -> list[TransferEvent]:
    """Transfer events emitted by `token` in a transaction receipt."""
    events = (decode_transfer_log(log) for log in receipt.get("logs") or [])
    return [e for e in events if e is not None and e.token.lower() == token.lower()]


# -- revert reasons ---------------------------------------------------------------------------------------

_REVERT_MARKERS: tuple[tuple[tuple[str, ...], EvmExactReason], ...] = (
    (("authorization is not yet valid", "authorizationnotyetvalid"), EvmExactReason.VALID_AFTER),
    (("authorization is expired", "authorizationexpired"), EvmExactReason.VALID_BEFORE),
    (
        ("authorization is used", "authorizationalreadyused", "authorizationusedorcanceled"),
        EvmExactReason.NONCE_USED,
    ),
    (("invalid signature", "signermismatch"), EvmExactReason.SIGNATURE),
    (("transfer amount exceeds balance", "erc20insufficientbalance"), EvmExactReason.INSUFFICIENT_FUNDS),
)


def revert_reason_to_x402(reason: str) -> str:
    """Map a FiatToken revert string (or a custom error name) to the x402 error reason."""
    text = reason.lower()
    for markers, mapped in _REVERT_MARKERS:
        if any(m in text for m in markers):
            return mapped.value
    return EvmExactReason.SIMULATION_FAILED.value
