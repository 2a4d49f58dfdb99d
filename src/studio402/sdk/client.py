"""One-call helpers (used by the demo) over AsyncStudio: pay a generate route on one rail, poll the job
with SIGN-IN-WITH-X, download the result; and `x402_client`, the official client for one EVM key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from x402 import x402Client
from x402.extensions.sign_in_with_x import CreateSIWxClientExtensionOptions, create_siwx_client_extension
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner

from studio402.sdk._client import AsyncStudio
from studio402.sdk._errors import JobFailed
from studio402.sdk._models import Job
from studio402.sdk._wallet import SolanaKey, TempoRail, Wallet

TERMINAL = frozenset({"complete", "failed", "canceled"})


@dataclass(frozen=True, slots=True)
class Generated:
    job: dict[str, Any]
    files: list[Path]


def x402_client(private_key: str, *, any_asset: bool = True) -> x402Client:
    """The official client: pays `exact` EVM offers and answers SIGN-IN-WITH-X challenges by itself.
    `any_asset` lifts the SDK's default allow-list of known stablecoins (needed for a devnet token)."""
    account = Account.from_key(private_key)
    client = x402Client()
    client.register("eip155:*", ExactEvmScheme(EthAccountSigner(account)))
    client.register_extension(
        create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[account]))
    )
    if any_asset:
        client.set_spend_controls(False)
    return client


async def generate(
    base_url: str,
    private_key: str,
    model: str,
    operation: str,
    body: dict[str, Any],
    *,
    out_dir: Path,
    timeout: float = 600,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> Generated:
    """Pay for one generation (x402 on EVM), wait for it, and save its files into `out_dir`."""
    return await _generate(
        Wallet(private_key), (), base_url, model, operation, body, out_dir, timeout, on_status
    )


async def generate_mpp(
    base_url: str,
    private_key: str,
    tempo_rpc_url: str,
    currency: str,
    model: str,
    operation: str,
    body: dict[str, Any],
    *,
    out_dir: Path,
    timeout: float = 600,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> Generated:
    """The same, paid with MPP `charge` on Tempo through the official pympp client (the key signs the Tempo
    transaction); the job is then polled with SIGN-IN-WITH-X by the same key."""
    wallet = Wallet(private_key, tempo=TempoRail(tempo_rpc_url, (currency,)))
    return await _generate(wallet, ("tempo",), base_url, model, operation, body, out_dir, timeout, on_status)


async def generate_svm(
    base_url: str,
    secret_key: bytes,
    solana_rpc_url: str,
    model: str,
    operation: str,
    body: dict[str, Any],
    *,
    out_dir: Path,
    timeout: float = 600,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> Generated:
    """The same, paid with x402 `exact` on Solana (the official client's ExactSvmScheme) by a Solana key
    (its 64-byte secret), which then signs in with Solana to poll the job."""
    wallet = Wallet(Wallet.new().key, solana=SolanaKey(secret_key, solana_rpc_url))  # an unused EVM key
    return await _generate(
        wallet, ("solana:",), base_url, model, operation, body, out_dir, timeout, on_status
    )


async def _generate(
    wallet: Wallet,
    networks: tuple[str, ...],
    base_url: str,
    model: str,
    operation: str,
    body: dict[str, Any],
    out_dir: Path,
    timeout: float,
    on_status: Callable[[dict[str, Any]], None] | None,
) -> Generated:
    def seen(job: Job) -> None:
        if on_status is not None:
            on_status(job.raw)

    async with AsyncStudio(base_url, wallet, networks=networks) as studio:
        try:
            done = await studio.generate(
                model, operation, body, out_dir=out_dir, timeout=timeout, on_update=seen
            )
        except JobFailed as failed:  # the old helpers returned an ended job without files
            return Generated(failed.job.raw, [])
    assert done.job is not None
    return Generated(done.job.raw, done.files)
