"""`studio402 devnet`: the faucet of the embedded devnet (for people and tests), and `serve`, which runs it
alone in the foreground for deployments where no API process should own it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from enum import StrEnum
from typing import Annotated

import typer
from eth_utils.address import is_address

from studio402.chain.devnet import Devnet, devnet_for
from studio402.chain.tempo_devnet import TempoDevnet, tempo_devnet_for
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, print_json, settings_from
from studio402.errors import Studio402Error
from studio402.money import format_usd, parse_usd
from studio402.solana import process as solana_process
from studio402.solana.faucet import fund_solana, solana_info, solana_public_json


class Rail(StrEnum):
    EVM = "evm"
    TEMPO = "tempo"
    SOLANA = "solana"


app = typer.Typer(no_args_is_help=True, help="The local devnet of the data dir (anvil + test USDC).")


@app.command()
def info(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print {rpcUrl, chainId, token, payTo} of the data dir's devnet (started if it was not running), plus
    "tempo": {rpcUrl, chainId, currency, recipient} when `[devnet] tempo` is on."""

    async def run() -> None:
        settings = settings_from(config, data_dir)
        devnet = devnet_for(settings)
        info = await devnet.start()
        running_before = devnet.reused
        await devnet.stop()
        shown = {**info.as_public_json(), "running": running_before}
        if settings.devnet.tempo:
            tempo = tempo_devnet_for(settings)
            shown["tempo"] = (await tempo.start()).as_public_json()
            await tempo.stop()
        if settings.devnet.solana:
            shown["solana"] = await solana_info(settings.data_dir)
        print_json(shown)

    try:
        asyncio.run(run())
    except Studio402Error as exc:
        fail(exc)


@app.command()
def serve(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the data dir's devnet in the foreground until SIGINT or SIGTERM.

    Anvil + test USDC, plus Tempo and Solana when devnet.tempo / devnet.solana are on. Prints one JSON line
    with its public info once it serves ("reused": it was already running). `serve` and `worker` processes
    of the data dir attach to it; on exit it stops what it started unless another process still uses it."""

    async def run() -> None:
        settings = settings_from(config, data_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before starting: a signal during start stops cleanly
            loop.add_signal_handler(sig, stop.set)
        devnet = devnet_for(settings)
        tempo = tempo_devnet_for(settings) if settings.devnet.tempo else None
        solana_started = False
        try:
            shown = {**(await devnet.start()).as_public_json(), "reused": devnet.reused}
            if tempo is not None:
                shown["tempo"] = (await tempo.start()).as_public_json()
            if settings.devnet.solana:
                url, solana_started = await solana_process.ensure_running(settings.data_dir)
                shown["solana"] = solana_public_json(settings.data_dir, url)
            sys.stdout.write(json.dumps(shown) + "\n")  # one line, flushed: a supervisor may wait for it
            sys.stdout.flush()
            await stop.wait()
        finally:
            if solana_started:  # the Solana server has no user count: only its starter stops it
                await solana_process.stop(settings.data_dir)
            if tempo is not None:
                await tempo.stop()
            await devnet.stop()

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
    rail: Annotated[
        Rail,
        typer.Option(
            help="evm: mint test USDC; tempo: send pathUSD on the Tempo devnet; solana: mint the SPL test "
            "USDC (ADDRESS is then a base58 Solana address; its token account is created)."
        ),
    ] = (Rail.EVM),
) -> None:
    """Mint test USDC to ADDRESS (AMOUNT in dollars), or with --rail tempo send it pathUSD."""

    if rail is not Rail.SOLANA and not is_address(address):
        typer.secho(f"error: {address!r} is not an 0x address", fg="red", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        micros = parse_usd(amount)
        settings = settings_from(config, data_dir)
        if rail is Rail.SOLANA:  # creates ADDRESS's token account for the devnet mint, then mints
            print_json(await fund_solana(settings.data_dir, address, micros))
            return
        devnet: Devnet | TempoDevnet = (
            tempo_devnet_for(settings) if rail is Rail.TEMPO else devnet_for(settings)
        )
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
