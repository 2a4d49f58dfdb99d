"""Ports of the auth subsystem (implemented elsewhere, injected at the composition root)."""

from __future__ import annotations

from typing import Protocol


class Eip1271Checker(Protocol):
    """Smart-wallet signature check, implemented by the chain layer.

    True when `address` on `chain_id` answers `isValidSignature(message_hash, signature)` with the EIP-1271
    magic value 0x1626ba7e (an implementation may also accept EIP-6492 wrapped signatures). Raise
    `ChainError` when the chain cannot be asked; return False for a plain "no".
    """

    async def is_valid_signature(
        self, chain_id: int, address: str, message_hash: bytes, signature: bytes
    ) -> bool: ...
