"""A real studio402 server paying on the session devnet, and helpers to build, make and inspect payments."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from x402.http.clients import x402HttpxClient

from studio402.api.app import create_app
from studio402.backends.registry import BackendRegistry
from studio402.chain.devnet import Devnet, DevnetInfo
from studio402.chain.token import TRANSFER_TOPIC, decode_transfer_log
from studio402.config import Settings
from studio402.sdk.client import TERMINAL, x402_client
from studio402.wiring import Wiring
from tests.devnet_fixture import Payer, authorize
from tests.server import free_port, serve

GENERATE = "/api/generate/nano-banana/generate"
BODY = {"prompt": "a lighthouse in a storm"}


@dataclass
class PaidServer:
    base: str
    wiring: Wiring
    settings: Settings
    devnet: Devnet

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=60)


def network_config(info: DevnetInfo, **changes: Any) -> dict[str, Any]:
    """`[[payments.networks]]` for a devnet, settled by its settler key (`changes` override keys)."""
    network = {
        "network": info.network,
        "asset": info.token,
        "asset_name": info.token_name,
        "asset_version": info.token_version,
        "pay_to": info.pay_to,
        "rpc_url": info.rpc_url,
        "settler_key": info.settler_key,
        "refund_key": info.refund_key,
    }
    network.update(changes)
    return {k: v for k, v in network.items() if v is not None}


def devnet_settings(devnet: Devnet, data_dir: Path, port: int, **overrides: Any) -> Settings:
    network = network_config(devnet.info)
    return Settings(data_dir=data_dir).with_overrides(
        **{"server.port": port, "payments.networks": [network], **overrides}
    )


@contextlib.asynccontextmanager
async def running_server(
    devnet: Devnet,
    data_dir: Path,
    *,
    registry: BackendRegistry | None = None,
    port: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> AsyncIterator[PaidServer]:
    """studio402 on the session devnet, with its own data dir (start it twice on one dir = a restart);
    `overrides` are dotted settings keys."""
    port = port or free_port()
    settings = devnet_settings(devnet, data_dir, port, **(overrides or {}))
    wiring = Wiring(settings, registry=registry)
    async with serve(create_app(wiring), port) as base:
        yield PaidServer(base, wiring, settings, devnet)


@pytest.fixture
async def paid_server(devnet: Devnet, tmp_path: Path) -> AsyncIterator[PaidServer]:
    async with running_server(devnet, tmp_path / "data") as server:
        yield server


def decode_header(value: str) -> Any:
    return json.loads(base64.b64decode(value))


async def challenge(client: httpx.AsyncClient, path: str = GENERATE, body: Any = BODY) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 402, response.text
    accepts: list[dict[str, Any]] = decode_header(response.headers["PAYMENT-REQUIRED"])["accepts"]
    return accepts[0]


def payment_header(
    devnet: Devnet,
    payer: Payer,
    accepted: dict[str, Any],
    *,
    value: int | None = None,
    extensions: dict[str, Any] | None = None,
    **auth_overrides: Any,
) -> str:
    """A PAYMENT-SIGNATURE for `accepted`, signed by `payer` (value/to/times overridable to break it)."""
    auth, signature = authorize(
        devnet, payer, int(accepted["amount"]) if value is None else value, **auth_overrides
    )
    payload: dict[str, Any] = {
        "x402Version": 2,
        "accepted": accepted,
        "payload": {"authorization": auth.to_json(), "signature": "0x" + signature.hex()},
    }
    if extensions:
        payload["extensions"] = extensions
    return base64.b64encode(json.dumps(payload).encode()).decode()


async def transfers_from(devnet: Devnet, address: str) -> list[tuple[str, int, str]]:
    """Every token Transfer sent by `address`: (receiver, value, tx hash)."""
    logs = await devnet.rpc.get_logs(
        {
            "address": devnet.info.token,
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [TRANSFER_TOPIC, "0x" + address.lower().removeprefix("0x").rjust(64, "0")],
        }
    )
    events = [decode_transfer_log(log) for log in logs]
    return [(e.receiver, e.value, e.tx_hash) for e in events if e is not None]


async def paid_job(server: PaidServer, key: str, body: Any = BODY, path: str = GENERATE) -> str:
    """Pay `path` with the official client (signing with `key`); the new job's id."""
    async with x402HttpxClient(x402_client(key), base_url=server.base, timeout=60) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


async def pay_and_wait(
    server: PaidServer, key: str, path: str, body: Any, *, timeout: float = 60
) -> dict[str, Any]:
    """Pay `path` with the official client, then poll the job over HTTP (the client answers the
    SIGN-IN-WITH-X 402 by itself) until it ends; its final view."""
    async with x402HttpxClient(x402_client(key), base_url=server.base, timeout=60) as http:
        created = await http.post(path, json=body)
        assert created.status_code == 200, created.text
        job_id = created.json()["jobId"]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            polled = await http.get(f"/api/jobs/{job_id}")
            assert polled.status_code == 200, polled.text
            job: dict[str, Any] = polled.json()
            if job["status"] in TERMINAL:
                return job
            assert asyncio.get_running_loop().time() < deadline, job
            await asyncio.sleep(0.1)
