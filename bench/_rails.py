"""Paying studio402 on its other rails for bench/paid_request.py, each with its official client:
MPP charge on the Tempo devnet (pympp) and x402 exact on the Solana devnet (x402's ExactSvmScheme).

Solana payments are signed before the clock starts, as on EVM. MPP credentials answer a challenge the
server issues per request, so the timed loop runs pympp's whole flow (402, sign, paid retry) per request:
its figure includes one more round trip, the client's signing and its own chain reads."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
from eth_account import Account
from mpp.client.transport import PaymentTransport
from mpp.methods.tempo import TempoAccount
from mpp.methods.tempo import client as tempo_client
from solders.keypair import Keypair
from x402 import x402Client
from x402.mechanisms.svm.exact import ExactSvmScheme
from x402.mechanisms.svm.signers import KeypairSigner
from x402.schemas import PaymentRequired

from studio402.chain.tempo_devnet import PATH_USD, TempoDevnet
from studio402.solana import process
from studio402.solana.devnet import NETWORK as SOLANA_NETWORK
from studio402.solana.faucet import fund_solana

PRICE = 70_000  # the bench route's price, in base units (6 decimals)
TEMPO_FEE_ALLOWANCE = 100_000  # Tempo charges its fees in the stablecoin too: the payer's pathUSD pays them


async def solana_headers(data_dir: Path, base: str, path: str, body: object, n: int) -> list[str]:
    """`n` PAYMENT-SIGNATURE headers from one funded payer, for the 402's Solana offer."""
    payer = Keypair()
    await fund_solana(data_dir, str(payer.pubkey()), n * PRICE)
    rpc_url, _ = await process.ensure_running(data_dir)
    async with httpx.AsyncClient(base_url=base) as http:
        unpaid = await http.post(path, json=body)
    required = PaymentRequired.model_validate_json(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
    only_solana = required.model_copy(
        update={"accepts": [a for a in required.accepts if a.network == SOLANA_NETWORK]}
    )
    client = x402Client()
    client.register("solana:*", ExactSvmScheme(KeypairSigner(payer), rpc_url=rpc_url))
    client.set_spend_controls(False)  # a devnet mint is not in its default-asset table
    headers = []
    for _ in range(n):
        payload = await client.create_payment_payload(only_solana)
        text = payload.model_dump_json(by_alias=True, exclude_none=True)
        headers.append(base64.b64encode(text.encode()).decode())
    return headers


async def tempo_payers(devnet: TempoDevnet, count: int, each: int) -> list[str]:
    """`count` Tempo keys funded with `each` pathUSD base units on the (started) devnet."""
    keys = ["0x" + bytes(Account.create().key).hex() for _ in range(count)]
    for key in keys:
        await devnet.fund(Account.from_key(key).address, each)
    return keys


async def fire_tempo(
    base: str, path: str, body: object, keys: list[str], rpc_url: str, requests: int, timeout: float
) -> tuple[float, set[str]]:
    """`requests` paid requests, one worker (and payer) per key, each through pympp's PaymentTransport."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    jobs: set[str] = set()

    async def worker(key: str) -> None:
        method = tempo_client.charge(
            account=TempoAccount.from_key(key), rpc_url=rpc_url, currencies=[PATH_USD]
        )
        transport = PaymentTransport(methods=[method])
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=timeout) as http:
            while not queue.empty():
                queue.get_nowait()
                r = await http.post(path, json=body)
                if r.status_code != 200:
                    raise RuntimeError(f"{base}: after {len(jobs)} paid: {r.status_code} {r.text[:300]}")
                jobs.add(json.loads(r.text)["jobId"])

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in keys))
    elapsed = time.perf_counter() - start
    return elapsed, jobs
