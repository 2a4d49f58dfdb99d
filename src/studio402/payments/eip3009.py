"""The EIP-712 / EIP-3009 codec of `exact` EVM payments: the authorization a payer signs, its digests, and
signature recovery. Pure (no I/O); shared by the payment method (verify) and the chain adapters (calldata).

`recover_authorization_signer` calls libsecp256k1 (coincurve) directly and rejects what FiatToken rejects
(high-s, bad v), so an off-chain verify agrees with the chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address as _to_checksum_address
from eth_utils.crypto import keccak

from studio402.errors import MalformedPayment, PaymentRejected

SIGNATURE_REASON = "invalid_exact_evm_payload_signature"

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

# EIP-55 costs a keccak per address; the same few addresses (token, payTo, payers) come back constantly.
to_checksum_address = lru_cache(maxsize=16_384)(_to_checksum_address)


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
    return PaymentRejected(f"invalid signature: {why}", code=SIGNATURE_REASON)


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
