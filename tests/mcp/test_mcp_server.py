"""`studio402 mcp` on stdio, driven by the `mcp` package's client against a real server on the devnet:
in wallet mode it pays and returns the image; in x402 mode the agent's own wallet pays through the x402
MCP transport (the official x402MCPSession) and the agent's sign-in reads the media."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from eth_account import Account
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.types import CallToolResult, ImageContent, ResourceLink
from PIL import Image
from x402 import x402Client
from x402.extensions.sign_in_with_x import encode_siwx_header
from x402.extensions.sign_in_with_x.client import create_siwx_payload
from x402.mcp import x402MCPSession
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner

from mcp import ClientSession, StdioServerParameters
from tests.devnet_fixture import new_payer
from tests.paid_support import PaidServer, transfers_from
from tests.server import free_port

CLI = str(Path(sys.executable).with_name("studio402"))


@asynccontextmanager
async def mcp_session(*args: str, key: str | None, cwd: Path) -> AsyncIterator[ClientSession]:
    env = {k: v for k, v in os.environ.items() if k != "STUDIO402_WALLET_KEY"}
    if key is not None:
        env["STUDIO402_WALLET_KEY"] = key
    params = StdioServerParameters(command=CLI, args=["mcp", *args], env=env, cwd=str(cwd))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def images_of(result: CallToolResult) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(block.data)))
        for block in result.content
        if isinstance(block, ImageContent)
    ]


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structuredContent is not None
    return dict(result.structuredContent)


async def test_wallet_mode_pays_and_returns_the_image(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 3_000_000)
    async with mcp_session("--server", studio_server.base, key=payer.key, cwd=tmp_path) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert names == {"list_models", "quote", "generate_image", "generate_video", "job_status", "download"}
        models = structured(await session.call_tool("list_models", {}))["models"]
        assert len(models) == 25 and {"model": "nano-banana", "operation": "generate"} in [
            {"model": m["model"], "operation": m["operation"]} for m in models
        ]
        price = structured(
            await session.call_tool(
                "quote", {"model": "nano-banana", "operation": "generate", "body": {"prompt": "a fox"}}
            )
        )["usd"]
        result = await session.call_tool("generate_image", {"prompt": "a fox in the snow"})
        assert not result.isError, result.content
        done = structured(result)
        assert done["status"] == "complete" and done["price"]["usd"] == price
        (image,) = images_of(result)
        assert image.width > 0
        assert (tmp_path / done["files"][0]).exists()
        status = structured(await session.call_tool("job_status", {"job_id": done["jobId"]}))
        assert status["status"] == "complete" and "imageUrl" in status["result"]
    sent = await transfers_from(studio_server.devnet, payer.address)
    assert len(sent) == 1


async def test_wallet_mode_spend_limit_refuses(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 3_000_000)
    args = ("--server", studio_server.base, "--max-usd-per-call", "0.01")
    async with mcp_session(*args, key=payer.key, cwd=tmp_path) as session:
        result = await session.call_tool("generate_image", {"prompt": "a fox"})
    assert result.isError and structured(result)["error"]["code"] == "spend_limit_exceeded"
    assert await transfers_from(studio_server.devnet, payer.address) == []


async def test_x402_mode_the_agent_pays_and_signs_in(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 3_000_000)
    account = Account.from_key(payer.key)
    wallet = x402Client()
    wallet.register("eip155:*", ExactEvmScheme(EthAccountSigner(account)))
    wallet.set_spend_controls(False)  # the devnet token is not on the SDK's default list
    async with mcp_session(
        "--server", studio_server.base, "--mode", "x402", key=None, cwd=tmp_path
    ) as session:
        unpaid = await session.call_tool("generate_image", {"prompt": "a heron"})
        assert unpaid.isError and structured(unpaid)["accepts"][0]["network"] == "eip155:31337"
        assert await transfers_from(studio_server.devnet, payer.address) == []

        paid = await x402MCPSession(session, wallet).call_tool("generate_image", {"prompt": "a heron"})
        assert paid.payment_made and not paid.is_error, paid.content
        assert paid.payment_response is not None
        created = structured(paid.raw_result)
        challenge = created["signIn"]["extensions"]["sign-in-with-x"]
        url = challenge["info"]["uri"]
        assert url.endswith(f"/api/jobs/{created['jobId']}")

        chain = challenge["supportedChains"][0]
        proof = await create_siwx_payload({**challenge["info"], **chain}, account, url)
        meta = {"sign-in-with-x": encode_siwx_header(proof)}
        unsigned = await session.call_tool("download", {"job_id": created["jobId"]})
        assert unsigned.isError and "sign-in-with-x" in structured(unsigned)["extensions"]
        result = await session.call_tool("download", {"job_id": created["jobId"]}, meta=meta)
        assert not result.isError, result.content
        (image,) = images_of(result)
        assert image.width > 0
    assert len(await transfers_from(studio_server.devnet, payer.address)) == 1


async def test_generate_video_links_the_file(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 5_000_000)
    async with mcp_session("--server", studio_server.base, key=payer.key, cwd=tmp_path) as session:
        result = await session.call_tool(
            "generate_video", {"prompt": "rain", "options": {"durationSeconds": "4"}}
        )
    assert not result.isError, result.content
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert [link.mimeType for link in links] == ["video/mp4"]
    assert Path(str(links[0].uri).removeprefix("file://")).stat().st_size > 10_000
    assert len(images_of(result)) == 1  # the thumbnail


async def test_streamable_http_transport(studio_server: PaidServer, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "STUDIO402_WALLET_KEY"}
    args = ["mcp", "--server", studio_server.base, "--transport", "http", "--port", str(port)]
    quiet = asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(CLI, *args, cwd=tmp_path, env=env, stdout=quiet, stderr=quiet)
    try:
        for _ in range(200):  # until it listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}/mcp"
        async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            unpaid = await session.call_tool("generate_image", {"prompt": "a heron"})
            assert unpaid.isError and structured(unpaid)["x402Version"] == 2  # x402 mode: no key here
    finally:
        proc.terminate()
        await proc.wait()
