"""`studio402 serve --demo`: the first paid generation, end to end, with the devnet's demo wallet."""

from __future__ import annotations

from pathlib import Path

import typer

from studio402.money import format_usd
from studio402.sdk.client import generate, generate_mpp, generate_svm
from studio402.wiring import Wiring

DEMOS = [
    (
        "nano-banana",
        "generate",
        {"prompt": "a lighthouse on a cliff at dusk, oil painting", "aspectRatio": "16:9"},
    ),
    ("veo-3.1-fast", "generate", {"prompt": "waves rolling onto a beach at sunset", "durationSeconds": "4"}),
]

MPP_DEMO = ("nano-banana", "generate", {"prompt": "a paper boat on a pond, watercolour"})


async def run_demo(wiring: Wiring, out: Path) -> None:
    devnet = wiring.devnet
    if devnet is None:
        typer.echo("--demo needs the embedded devnet (no payment network configured)")
        return
    info = devnet.info
    base = wiring.settings.public_url
    typer.secho(
        f"demo: paying from {info.demo_payer} "
        f"(balance ${format_usd(await devnet.balance_of(info.demo_payer))})",
        fg="cyan",
    )
    for model, operation, body in DEMOS:
        done = await generate(
            base,
            info.demo_payer_key,
            model,
            operation,
            body,
            out_dir=out,
            on_status=lambda job: typer.echo(f"  {job['jobId']}: {job['status']}"),
        )
        for path in done.files:
            typer.secho(f"demo: {model}/{operation} -> {path}", fg="green")
    if wiring.tempo is not None and wiring.tempo.devnet is not None:
        await _pay_with_mpp(wiring, info.demo_payer, info.demo_payer_key, out)
    if wiring.solana is not None:
        await _pay_on_solana(wiring, out)
    balance = await devnet.balance_of(info.demo_payer)
    typer.secho(
        f"demo: done; demo wallet balance ${format_usd(balance)}. The server keeps running at {base}.",
        fg="cyan",
    )


async def _pay_with_mpp(wiring: Wiring, payer: str, key: str, out: Path) -> None:
    """One more image, paid with MPP `charge` on the Tempo devnet (pathUSD) by the same demo key."""
    assert wiring.tempo is not None and wiring.tempo.devnet is not None
    tempo = wiring.tempo.devnet
    await tempo.fund(payer, 5_000_000)
    model, operation, body = MPP_DEMO
    done = await generate_mpp(
        wiring.settings.public_url,
        key,
        tempo.info.rpc_url,
        tempo.info.currency,
        model,
        operation,
        body,
        out_dir=out,
    )
    for path in done.files:
        typer.secho(f"demo: {model}/{operation} paid with MPP on Tempo -> {path}", fg="green")


async def _pay_on_solana(wiring: Wiring, out: Path) -> None:
    """One more image, paid with x402 `exact` on the Solana devnet by a fresh Solana key."""
    from solders.keypair import Keypair

    from studio402.solana import process
    from studio402.solana.faucet import fund_solana

    payer = Keypair()
    data_dir = wiring.settings.data_dir
    await fund_solana(data_dir, str(payer.pubkey()), 5_000_000)
    rpc_url, _ = await process.ensure_running(data_dir)
    model, operation, body = MPP_DEMO
    done = await generate_svm(
        wiring.settings.public_url, bytes(payer), rpc_url, model, operation, body, out_dir=out
    )
    for path in done.files:
        typer.secho(f"demo: {model}/{operation} paid on Solana -> {path}", fg="green")
