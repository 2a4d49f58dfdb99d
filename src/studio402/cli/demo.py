"""`studio402 serve --demo`: the first paid generation, end to end, with the devnet's demo wallet."""

from __future__ import annotations

from pathlib import Path

import typer

from studio402.money import format_usd
from studio402.sdk.client import generate
from studio402.services import Services

DEMOS = [
    (
        "nano-banana",
        "generate",
        {"prompt": "a lighthouse on a cliff at dusk, oil painting", "aspectRatio": "16:9"},
    ),
    ("veo-3.1-fast", "generate", {"prompt": "waves rolling onto a beach at sunset", "durationSeconds": "4"}),
]


async def run_demo(services: Services, out: Path) -> None:
    devnet = services.devnet
    if devnet is None:
        typer.echo("--demo needs the embedded devnet (no payment network configured)")
        return
    info = devnet.info
    base = services.settings.public_url
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
    balance = await devnet.balance_of(info.demo_payer)
    typer.secho(
        f"demo: done; demo wallet balance ${format_usd(balance)}. The server keeps running at {base}.",
        fg="cyan",
    )
