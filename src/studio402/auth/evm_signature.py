"""EIP-191 personal_sign hashing and EOA signer recovery with coincurve (libsecp256k1).

eth_account does the same through several layers of pure Python; this is the ~0.1 ms core of it.
"""

from __future__ import annotations

import coincurve
from Crypto.Hash import keccak

_PERSONAL_PREFIX = b"\x19Ethereum Signed Message:\n"


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def personal_sign_hash(message: str) -> bytes:
    """The EIP-191 version 0x45 digest a wallet signs for `personal_sign(message)`."""
    body = message.encode("utf-8")
    return keccak256(_PERSONAL_PREFIX + str(len(body)).encode("ascii") + body)


def decode_signature(signature: str) -> bytes:
    """`0x`-prefixed hex to bytes (the caller has checked the format)."""
    return bytes.fromhex(signature[2:])


def recover_address(message_hash: bytes, signature: bytes) -> str | None:
    """The lowercase `0x` address that produced a 65-byte r||s||v signature, or None if unrecoverable."""
    if len(signature) != 65:
        return None
    v = signature[64]
    recid = v - 27 if v >= 27 else v
    if recid not in (0, 1):
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((recid,)), message_hash, hasher=None
        )
    except ValueError:  # r or s out of range, or no point for this r
        return None
    return "0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex()
