"""`studio402` command line: serve, init, and the operator tools (devnet, ledger, backends)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from studio402 import failpoints
from studio402.cli import backends as backends_cmd
from studio402.cli import db as db_cmd
from studio402.cli import devnet as devnet_cmd
from studio402.cli import ledger as ledger_cmd
from studio402.cli import payer as payer_cmd
from studio402.cli import worker as worker_cmd
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, settings_from
from studio402.config import example_config
from studio402.errors import Studio402Error

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Sell AI image and video generation per call, paid with HTTP 402 micropayments.",
)
app.add_typer(devnet_cmd.app, name="devnet")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(backends_cmd.app, name="backends")
app.add_typer(db_cmd.app, name="db")
payer_cmd.register(app)  # generate, quote, jobs, job, wallet: the payer's side
app.command()(worker_cmd.worker)


@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Once up, pay for a first image and video with the "
            "devnet's demo wallet and save them to --out.",
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="Where --demo saves its files.")] = Path("out"),
) -> None:
    """Run the API (embedded default: devnet + SQLite + local blobs + preview backend)."""
    from studio402.api.app import create_app
    from studio402.cli.demo import run_demo
    from studio402.redact import Scrubber, install_log_redaction
    from studio402.wiring import Wiring

    settings = settings_from(config, data_dir, **{"server.host": host, "server.port": port})
    failpoints.arm(settings.jobs.failpoints)
    db_cmd.require_schema(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "x402"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    wiring = Wiring(settings)
    server_config = uvicorn.Config(
        create_app(wiring),
        host=settings.server.host,
        port=settings.server.port,
        log_level="info",
        lifespan="on",
    )
    # After uvicorn.Config, which sets up uvicorn's own handlers: every handler gets the filter.
    install_log_redaction(Scrubber.from_settings(settings))
    server = uvicorn.Server(server_config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if demo and server.started:
            try:
                await run_demo(wiring, out)
            except Exception as exc:  # the server keeps running; say what went wrong
                typer.secho(f"demo failed: {exc}", fg="red", err=True)
        await serving

    try:
        asyncio.run(main())
    except Studio402Error as exc:
        fail(exc)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path("studio402.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example config (every key, with its default)."""
    if path.exists() and not force:
        typer.secho(f"{path} exists; use --force to overwrite it", fg="red", err=True)
        raise typer.Exit(1)
    path.write_text(example_config())
    typer.echo(f"wrote {path}; start with: studio402 serve --config {path}")


def main() -> None:
    app()
