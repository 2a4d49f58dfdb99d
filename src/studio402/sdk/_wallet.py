"""A payer's keys: the EVM key (x402 `exact` on any eip155 chain, and SIGN-IN-WITH-X), optionally a Solana
key (x402 `exact` on Solana, Sign in with Solana) and a Tempo RPC for MPP `charge` with the EVM key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402 import x402Client
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner


@dataclass(frozen=True, slots=True)
class SolanaKey:
    secret: bytes  # the 64-byte keypair secret
    rpc_url: str


@dataclass(frozen=True, slots=True)
class TempoRail:
    """MPP `charge` on Tempo, paid by the EVM key through the official pympp client."""

    rpc_url: str
    currencies: tuple[str, ...] = ()


class Wallet:
    def __init__(self, evm_key: str, *, solana: SolanaKey | None = None, tempo: TempoRail | None = None):
        self.account: LocalAccount = Account.from_key(evm_key)
        self.solana = solana
        self.tempo = tempo
        self._solana_signer: Any = None

    @classmethod
    def new(cls) -> Wallet:
        return cls("0x" + bytes(Account.create().key).hex())

    @classmethod
    def from_file(cls, path: Path) -> Wallet:
        return cls(path.read_text().strip())

    @property
    def key(self) -> str:
        return "0x" + bytes(self.account.key).hex()

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def solana_signer(self) -> Any:
        if self.solana is not None and self._solana_signer is None:
            from solders.keypair import Keypair
            from x402.mechanisms.svm.signers import KeypairSigner

            self._solana_signer = KeypairSigner(Keypair.from_bytes(self.solana.secret))
        return self._solana_signer

    def payer_for(self, network: str) -> str:
        """The address that pays (and signs in) on `network`."""
        if network.startswith("solana:") and self.solana_signer is not None:
            return str(self.solana_signer.address)
        return self.address

    def can_pay(self, network: str) -> bool:
        return network.startswith("eip155:") or (network.startswith("solana:") and self.solana is not None)

    def x402_client(self) -> x402Client:
        """The official client with every scheme this wallet can pay. Spend controls are ours (per call and
        per session, in USD), so the SDK's default allow-list of known assets is lifted."""
        client = x402Client()
        client.register("eip155:*", ExactEvmScheme(EthAccountSigner(self.account)))
        if self.solana is not None:
            from x402.mechanisms.svm.exact import ExactSvmScheme

            client.register("solana:*", ExactSvmScheme(self.solana_signer, rpc_url=self.solana.rpc_url))
        client.set_spend_controls(False)
        return client

    def siwx_signer(self, signature_type: str) -> Any:
        """The signer for a SIGN-IN-WITH-X challenge of `signature_type` (eip191 or ed25519), or None."""
        if signature_type == "eip191":
            return self.account
        if signature_type == "ed25519":
            return self.solana_signer
        return None


def write_key_file(path: Path) -> Wallet:
    """A new EVM key written to `path` (mode 0600, never overwriting)."""
    wallet = Wallet.new()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(wallet.key + "\n")
    return wallet
