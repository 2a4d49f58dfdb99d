"""A wallet's token balance on an EVM chain (ERC-20 `balanceOf` over JSON-RPC)."""

from __future__ import annotations

import httpx

BALANCE_OF = "0x70a08231"


async def token_balance(rpc_url: str, asset: str, address: str) -> int:
    call = {"to": asset, "data": BALANCE_OF + address.lower().removeprefix("0x").rjust(64, "0")}
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, "latest"]}
    async with httpx.AsyncClient(timeout=30) as http:
        answer = (await http.post(rpc_url, json=body)).json()
    if "error" in answer:
        raise ValueError(f"eth_call failed: {answer['error']}")
    return int(answer["result"], 16)


async def chain_id(rpc_url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    async with httpx.AsyncClient(timeout=30) as http:
        return int((await http.post(rpc_url, json=body)).json()["result"], 16)
