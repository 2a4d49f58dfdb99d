"""Sign in with Solana (CAIP-122): the text a Solana wallet signs and its ed25519 check.

The official x402 client (`sign_in_with_x.solana`) renders the message below and signs its UTF-8 bytes with
ed25519; `address` is the base58 public key and `signature` the base58 64-byte signature. Unlike the EVM
rendering, an absent statement leaves one blank line, and an empty request id or resource list is omitted.
"""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from studio402.auth.siwx_proof import SiwxProof


def build_siws_message(proof: SiwxProof) -> str:
    """The CAIP-122 text of a Solana proof (same bytes as the x402 SDK's format_siws_message)."""
    reference = proof.chain_id.split(":", 1)[1]
    lines = [f"{proof.domain} wants you to sign in with your Solana account:", proof.address, ""]
    if proof.statement:
        lines += [proof.statement, ""]
    lines += [
        f"URI: {proof.uri}",
        f"Version: {proof.version}",
        f"Chain ID: {reference}",
        f"Nonce: {proof.nonce}",
        f"Issued At: {proof.issued_at}",
    ]
    if proof.expiration_time:
        lines.append(f"Expiration Time: {proof.expiration_time}")
    if proof.not_before:
        lines.append(f"Not Before: {proof.not_before}")
    if proof.request_id:
        lines.append(f"Request ID: {proof.request_id}")
    if proof.resources:
        lines.append("Resources:")
        lines.extend(f"- {r}" for r in proof.resources)
    return "\n".join(lines)


def ed25519_signed(proof: SiwxProof) -> bool:
    """Whether `signature` is the ed25519 signature of the message by the key `address` (both base58)."""
    try:
        key = Pubkey.from_string(proof.address)
        signature = Signature.from_string(proof.signature)
    except ValueError:  # not 32 / 64 bytes of base58
        return False
    return signature.verify(key, build_siws_message(proof).encode("utf-8"))
