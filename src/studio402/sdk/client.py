"""A small paying client built on the official x402 SDK: pay a generate route, poll the job with
SIGN-IN-WITH-X, download the result. Imports nothing from the server side."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from x402 import x402Client
from x402.extensions.sign_in_with_x import CreateSIWxClientExtensionOptions, create_siwx_client_extension
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner

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
    """Pay for one generation, wait for it, and save its files into `out_dir`."""
    async with x402HttpxClient(x402_client(private_key), base_url=base_url, timeout=120) as http:
        created = await http.post(f"/api/generate/{model}/{operation}", json=body)
    return await _follow(base_url, private_key, created, out_dir, timeout, on_status)


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
    from mpp.client.transport import PaymentTransport
    from mpp.methods.tempo import TempoAccount
    from mpp.methods.tempo import client as tempo

    method = tempo.charge(
        account=TempoAccount.from_key(private_key), rpc_url=tempo_rpc_url, currencies=[currency]
    )
    paying = PaymentTransport(methods=[method], inner=httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(transport=paying, base_url=base_url, timeout=120) as http:
        created = await http.post(f"/api/generate/{model}/{operation}", json=body)
    return await _follow(base_url, private_key, created, out_dir, timeout, on_status)


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
    client = svm_client(secret_key, solana_rpc_url)
    async with x402HttpxClient(client, base_url=base_url, timeout=120) as http:
        created = await http.post(f"/api/generate/{model}/{operation}", json=body)
    return await _follow_with(client, base_url, created, out_dir, timeout, on_status)


def svm_client(secret_key: bytes, rpc_url: str) -> x402Client:
    """The official client for one Solana key: pays `exact` on Solana and signs in with the same key."""
    from solders.keypair import Keypair
    from x402.mechanisms.svm.exact import ExactSvmScheme
    from x402.mechanisms.svm.signers import KeypairSigner

    signer = KeypairSigner(Keypair.from_bytes(secret_key))
    client = x402Client()
    client.register("solana:*", ExactSvmScheme(signer, rpc_url=rpc_url))
    client.register_extension(
        create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[signer]))
    )
    client.set_spend_controls(False)  # a devnet mint is not in the SDK's default-asset table
    return client


async def _follow(
    base_url: str,
    private_key: str,
    created: httpx.Response,
    out_dir: Path,
    timeout: float,
    on_status: Callable[[dict[str, Any]], None] | None,
) -> Generated:
    """After the paid POST: poll the job (SIGN-IN-WITH-X by the same key) and save its files."""
    return await _follow_with(x402_client(private_key), base_url, created, out_dir, timeout, on_status)


async def _follow_with(
    client: x402Client,
    base_url: str,
    created: httpx.Response,
    out_dir: Path,
    timeout: float,
    on_status: Callable[[dict[str, Any]], None] | None,
) -> Generated:
    if created.status_code not in (200, 202):
        raise RuntimeError(f"payment failed ({created.status_code}): {created.text}")
    async with x402HttpxClient(client, base_url=base_url, timeout=120) as http:
        job = await _wait(http, created.json()["jobId"], timeout, on_status)
    files = await _download(job, out_dir) if job["status"] == "complete" else []
    return Generated(job, files)


async def _wait(
    http: httpx.AsyncClient, job_id: str, timeout: float, on_status: Callable[[dict[str, Any]], None] | None
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline, last = loop.time() + timeout, None
    while True:
        polled = await http.get(f"/api/jobs/{job_id}")
        polled.raise_for_status()
        job: dict[str, Any] = polled.json()
        if on_status is not None and job["status"] != last:
            on_status(job)
            last = job["status"]
        if job["status"] in TERMINAL:
            return job
        if loop.time() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g} s")
        await asyncio.sleep(min(2.0, float(job.get("pollIntervalSeconds", 2))))


async def _download(job: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = job["result"]
    wanted = [("videoUrl", "mp4"), ("thumbnailUrl", "webp")] if "videoUrl" in result else [("imageUrl", None)]
    files = []
    async with httpx.AsyncClient(timeout=60) as http:
        for key, ext in wanted:
            response = await http.get(result[key])
            response.raise_for_status()
            suffix = ext or response.headers.get("content-type", "image/png").split("/")[-1].replace(
                "jpeg", "jpg"
            )
            path = out_dir / f"{job['jobId']}-{key.removesuffix('Url')}.{suffix}"
            path.write_bytes(response.content)
            files.append(path)
    return files
