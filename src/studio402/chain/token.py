"""Pure helpers for USDC-like EIP-3009 tokens: calldata, decoders, EIP-712 digests, signature recovery.

No I/O. Addresses come back EIP-55 checksummed. `recover_authorization_signer` calls libsecp256k1 (coincurve)
directly and rejects what FiatToken rejects (high-s, bad v), so an off-chain verify agrees with the chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address as _to_checksum_address
from eth_utils.crypto import keccak

from studio402.errors import MalformedPayment, PaymentRejected

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2

DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak(
    text="TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    "uint256 validBefore,bytes32 nonce)"
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak(
    text="ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    "uint256 validBefore,bytes32 nonce)"
)
CANCEL_AUTHORIZATION_TYPEHASH = keccak(text="CancelAuthorization(address authorizer,bytes32 nonce)")

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
AUTHORIZATION_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()
AUTHORIZATION_CANCELED_TOPIC = "0x" + keccak(text="AuthorizationCanceled(address,bytes32)").hex()

# EIP-55 costs a keccak per address; the same few addresses (token, payTo, payers) come back constantly.
to_checksum_address = lru_cache(maxsize=16_384)(_to_checksum_address)

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
class TransferAuthorization:
    """The EIP-3009 `TransferWithAuthorization` message a payer signs."""

    from_address: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes  # 32 bytes, chosen by the payer

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TransferAuthorization:
        """Parse the x402 payload's `authorization` object (decimal strings, 0x hex nonce)."""
        try:
            nonce = bytes.fromhex(str(data["nonce"]).removeprefix("0x"))
            auth = cls(
                from_address=to_checksum_address(str(data["from"])),
                to=to_checksum_address(str(data["to"])),
                value=int(str(data["value"])),
                valid_after=int(str(data["validAfter"])),
                valid_before=int(str(data["validBefore"])),
                nonce=nonce,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedPayment(f"invalid EIP-3009 authorization: {exc}") from exc
        if len(nonce) != 32 or min(auth.value, auth.valid_after, auth.valid_before) < 0:
            raise MalformedPayment("invalid EIP-3009 authorization: nonce must be 32 bytes, numbers >= 0")
        return auth

    def to_json(self) -> dict[str, str]:
        return {
            "from": self.from_address,
            "to": self.to,
            "value": str(self.value),
            "validAfter": str(self.valid_after),
            "validBefore": str(self.valid_before),
            "nonce": "0x" + self.nonce.hex(),
        }


@dataclass(frozen=True, slots=True)
class TransferEvent:
    token: str
    sender: str
    receiver: str
    value: int
    tx_hash: str
    log_index: int
    block_number: int


# -- EIP-712 --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def eip712_domain_separator(name: str, version: str, chain_id: int, token: str) -> bytes:
    """FiatToken's DOMAIN_SEPARATOR(): EIP712Domain(name, version, chainId, verifyingContract)."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=name), keccak(text=version), chain_id, token],
        )
    )


def _typed_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


def transfer_with_authorization_digest(auth: TransferAuthorization, domain_separator: bytes) -> bytes:
    """The EIP-712 hash a payer signs for `transferWithAuthorization`."""
    return authorization_digest(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, auth, domain_separator)


def authorization_digest(typehash: bytes, auth: TransferAuthorization, domain_separator: bytes) -> bytes:
    """EIP-712 hash for the transfer / receive authorization typehash given."""
    a = auth
    values = [typehash, a.from_address, a.to, a.value, a.valid_after, a.valid_before, a.nonce]
    struct_hash = keccak(
        abi_encode(["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"], values)
    )
    return _typed_digest(domain_separator, struct_hash)


def cancel_authorization_digest(authorizer: str, nonce: bytes, domain_separator: bytes) -> bytes:
    struct_hash = keccak(
        abi_encode(["bytes32", "address", "bytes32"], [CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce])
    )
    return _typed_digest(domain_separator, struct_hash)


# -- signatures -----------------------------------------------------------------------------------------


def _bad_signature(why: str) -> PaymentRejected:
    return PaymentRejected(f"invalid signature: {why}", code=EvmExactReason.SIGNATURE.value)


def split_signature(signature: bytes) -> tuple[int, bytes, bytes]:
    """(v, r, s) of a 65-byte r‖s‖v signature, with v normalised to 27/28 (accepts 0/1/27/28)."""
    if len(signature) != 65:
        raise _bad_signature(f"expected 65 bytes, got {len(signature)}")
    v = signature[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise _bad_signature(f"v must be 0, 1, 27 or 28, got {signature[64]}")
    return v, signature[:32], signature[32:64]


def recover_authorization_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed `digest`. Rejects (PaymentRejected, code
    invalid_exact_evm_payload_signature) what the token's ecrecover path rejects: bad length or v,
    r or s out of range, high-s (malleable) signatures."""
    v, r, s = split_signature(signature)
    r_int, s_int = int.from_bytes(r, "big"), int.from_bytes(s, "big")
    if not 0 < r_int < SECP256K1_N:
        raise _bad_signature("r out of range")
    if not 0 < s_int <= _HALF_N:
        raise _bad_signature("s out of range (high-s signatures are malleable)")
    try:
        public = PublicKey.from_signature_and_message(r + s + bytes([v - 27]), digest, hasher=None)
    except Exception as exc:  # libsecp256k1 refuses: no point recovers from this signature
        raise _bad_signature("no public key recovers from it") from exc
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:])


def sign_digest(digest: bytes, private_key: str | bytes) -> bytes:
    """65-byte r‖s‖v (v = 27/28, low-s) signature of a 32-byte digest."""
    key = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
    raw = PrivateKey(key).sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes([raw[64] + 27])


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
