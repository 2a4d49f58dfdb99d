"""What `studio402 devnet info|fund` do on the Solana rail: through the data dir's live devnet server
(started for the call, and stopped again if it was not running before)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey

from studio402.chain.errors import RpcError
from studio402.chain.rpc import AsyncRpc
from studio402.errors import InputError
from studio402.money import format_usd, to_atomic
from studio402.solana import process
from studio402.solana.devnet import DECIMALS, NETWORK, associated_token_account, devnet_keys


async def solana_info(data_dir: Path) -> dict[str, Any]:
    """{rpcUrl, network, mint, payTo, feePayer, running} of the data dir's Solana devnet."""
    url, started = await process.ensure_running(data_dir)
    if started:
        await process.stop(data_dir)
    return {**solana_public_json(data_dir, url), "running": not started}


def solana_public_json(data_dir: Path, rpc_url: str) -> dict[str, Any]:
    """{rpcUrl, network, mint, payTo, feePayer} of the data dir's Solana devnet served at `rpc_url`."""
    fee_payer, pay_to, mint = devnet_keys(data_dir)
    return {
        "rpcUrl": rpc_url,
        "network": NETWORK,
        "mint": str(mint.pubkey()),
        "payTo": str(pay_to.pubkey()),
        "feePayer": str(fee_payer.pubkey()),
    }


async def fund_solana(data_dir: Path, address: str, micros: int) -> dict[str, Any]:
    """Create ADDRESS's token account for our mint if needed and mint `micros` of test USDC into it."""
    try:
        owner = Pubkey.from_string(address)
    except ValueError:
        raise InputError(f"{address!r} is not a Solana address", code="invalid_address") from None
    url, started = await process.ensure_running(data_dir)
    try:
        async with AsyncRpc(url) as rpc:
            balance = int(await rpc.request("studio402_fund", [address, to_atomic(micros, DECIMALS)]))
    except RpcError as exc:
        raise InputError(exc.rpc_message, code="invalid_input") from None
    finally:
        if started:
            await process.stop(data_dir)
    mint = devnet_keys(data_dir)[2].pubkey()
    return {
        "address": address,
        "tokenAccount": str(associated_token_account(owner, mint)),
        "minted": format_usd(micros),
        "balance": format_usd(balance),
    }
