"""`studio402 devnet`: the faucet of the embedded devnet (for people and tests)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from eth_utils.address import is_address

from studio402.chain.devnet import devnet_for
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, print_json, settings_from
from studio402.errors import Studio402Error
from studio402.money import format_usd, parse_usd

app = typer.Typer(no_args_is_help=True, help="The local devnet of the data dir (anvil + test USDC).")


@app.command()
def info(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print {rpcUrl, chainId, token, payTo} of the data dir's devnet (started if it was not running)."""

    async def run() -> None:
        devnet = devnet_for(settings_from(config, data_dir))
        info = await devnet.start()
        running_before = devnet.reused
        await devnet.stop()
        print_json({**info.as_public_json(), "running": running_before})

    try:
        asyncio.run(run())
    except Studio402Error as exc:
        fail(exc)


@app.command()
def fund(
    address: Annotated[str, typer.Argument(help="0x address to credit.")],
    amount: Annotated[str, typer.Argument(help="Dollars of test USDC, e.g. 25 or 0.5.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Mint test USDC to ADDRESS (AMOUNT in dollars)."""

    if not is_address(address):
        typer.secho(f"error: {address!r} is not an 0x address", fg="red", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        micros = parse_usd(amount)
        devnet = devnet_for(settings_from(config, data_dir))
        await devnet.start()
        try:
            tx = await devnet.fund(address, micros)
            balance = await devnet.balance_of(address)
            await devnet.checkpoint()
        finally:
            await devnet.stop()
        print_json(
            {
                "address": address,
                "minted": format_usd(micros),
                "balance": format_usd(balance),
                "tx": tx,
            }
        )

    try:
        asyncio.run(run())
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    except Studio402Error as exc:
        fail(exc)
