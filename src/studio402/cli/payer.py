"""The payer's commands: generate (pay, wait, download), quote, jobs, job, wallet. They use only the SDK.

The key comes from $STUDIO402_WALLET_KEY or --key-file (read here, in `load_wallet`, and nowhere else).
Progress goes to stderr; `--json` prints one JSON object on stdout. Errors print the server's problem
`code` and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from studio402.sdk import AsyncStudio, Job, Price, SpendLimits, StudioError, Wallet, write_key_file
from studio402.sdk._balances import chain_id, token_balance

KEY_ENV = "STUDIO402_WALLET_KEY"

ServerOpt = Annotated[str, typer.Option("--server", "-s", help="The studio402 (or StableStudio-style) URL.")]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help=f"File holding the wallet's private key [default: ${KEY_ENV}]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PromptOpt = Annotated[str | None, typer.Option("--prompt", "-p", help="The prompt field.")]
FieldsArg = Annotated[
    list[str] | None, typer.Argument(help="More body fields: name=value (a string) or name:=json.")
]

err = Console(stderr=True)
P = ParamSpec("P")
T = TypeVar("T")


def load_wallet(key_file: Path | None) -> Wallet:
    """The one place the CLI reads a key: --key-file, else $STUDIO402_WALLET_KEY."""
    if key_file is not None:
        return Wallet.from_file(key_file)
    key = os.environ.get(KEY_ENV)
    if not key:
        raise StudioError(f"no wallet: set ${KEY_ENV} or pass --key-file", code="no_wallet")
    return Wallet(key.strip())


def body_from(prompt: str | None, fields: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {} if prompt is None else {"prompt": prompt}
    for item in fields or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise StudioError(f"fields are name=value or name:=json, not {item!r}", code="bad_field")
        if name.endswith(":"):
            try:
                body[name[:-1]] = json.loads(value)
            except ValueError:
                raise StudioError(f"{name[:-1]}: not JSON: {value!r}", code="bad_field") from None
        else:
            body[name] = value
    return body


def _runs(as_json_param: str = "as_json") -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, T]]:
    """Run an async command; an SDK error prints its code (and a JSON object with --json) and exits 1."""

    def decorate(command: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
        @wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return asyncio.run(command(*args, **kwargs))
            except StudioError as exc:
                if kwargs.get(as_json_param):
                    _print_json({"error": {"code": exc.code, "detail": exc.detail, "status": exc.status}})
                err.print(f"[red]error ({exc.code}):[/red] {exc.detail}", highlight=False)
                raise typer.Exit(1) from None

        return run

    return decorate


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _job_line(job: Job, started: float) -> str:
    progress = f" {job.progress:.0f}%" if job.progress is not None else ""
    return f"{job.job_id}: {job.status.value}{progress} ({time.monotonic() - started:.0f} s)"


@_runs()
async def generate(
    model: Annotated[str, typer.Argument(help="Model, e.g. nano-banana.")],
    operation: Annotated[str, typer.Argument(help="Operation, e.g. generate.")],
    fields: FieldsArg = None,
    server: ServerOpt = "http://127.0.0.1:8402",
    prompt: PromptOpt = None,
    image: Annotated[
        list[Path] | None, typer.Option("--image", "-i", help="A local image (uploaded, paid); repeatable.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to save the files.")] = Path("out"),
    max_usd: Annotated[str | None, typer.Option("--max-usd", help="Refuse to pay more than this.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job and download.")] = True,
    events: Annotated[
        bool, typer.Option("--events", help="Follow the job's event stream, not polls.")
    ] = False,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pay for one generation, wait for it and save its files."""
    body = body_from(prompt, fields)
    limits = SpendLimits(per_call=Price.from_usd(max_usd) if max_usd else None)
    async with AsyncStudio(server, load_wallet(key_file), limits=limits, follow_events=events) as studio:
        files = await _image_fields(studio, model, operation, image) if image else None
        started = time.monotonic()
        with err.status(f"{model}/{operation}…") as status:

            def show(job: Job) -> None:
                status.update(_job_line(job, started))

            def phase(text: str) -> None:
                status.update(f"{text}… ({time.monotonic() - started:.0f} s)")

            studio.on_phase = phase

            done = await studio.generate(
                model, operation, body, files=files, wait=wait, out_dir=out, on_update=show
            )
    if as_json:
        _print_json(done.to_json())
        return
    err.print(f"paid ${done.price.usd}: {done.job_id} {done.status.value}", highlight=False)
    for path in done.files:
        typer.echo(str(path))


async def _image_fields(
    studio: AsyncStudio, model: str, operation: str, images: list[Path]
) -> dict[str, Path | list[Path]]:
    """--image files go to the route's `images` list, else its single `image` field."""
    properties = (await studio.body_schema(model, operation)).get("properties") or {}
    if "images" in properties:
        return {"images": images}
    if "image" in properties and len(images) == 1:
        return {"image": images[0]}
    raise StudioError(f"{model}/{operation} takes no such --image input", code="bad_field")


@_runs()
async def quote(
    model: Annotated[str, typer.Argument()],
    operation: Annotated[str, typer.Argument()],
    fields: FieldsArg = None,
    server: ServerOpt = "http://127.0.0.1:8402",
    prompt: PromptOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The price of a request (nothing is paid)."""
    async with AsyncStudio(server) as studio:
        priced = await studio.quote(model, operation, body_from(prompt, fields))
    if as_json:
        _print_json(
            {
                "price": {"usd": priced.price.usd, "micros": str(priced.price.micros)},
                "rule": priced.rule,
                "request": priced.request,
            }
        )
        return
    typer.echo(f"${priced.price.usd}  ({priced.rule})")


@_runs()
async def jobs(
    server: ServerOpt = "http://127.0.0.1:8402", key_file: KeyFileOpt = None, as_json: JsonOpt = False
) -> None:
    """Your jobs on the server, newest first."""
    async with AsyncStudio(server, load_wallet(key_file)) as studio:
        listed = await studio.jobs()
    if as_json:
        _print_json({"jobs": [j.raw for j in listed]})
        return
    for job in listed:
        typer.echo(f"{job.job_id}  {job.status.value:9}  {job.raw.get('model')}/{job.raw.get('operation')}")


@_runs()
async def job(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    server: ServerOpt = "http://127.0.0.1:8402",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Download its files here.")] = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One job's status (and its files with --out)."""
    async with AsyncStudio(server, load_wallet(key_file)) as studio:
        found = await studio.job(job_id)
        files = await studio.download(found, out) if out is not None and found.urls else []
    if as_json:
        _print_json({**found.raw, "files": [str(p) for p in files]})
        return
    typer.echo(f"{found.job_id}: {found.status.value}")
    for kind, url in found.urls.items():
        typer.echo(f"  {kind}: {url}")
    for path in files:
        typer.echo(str(path))


wallet_app = typer.Typer(help="Your paying wallet: address and balances; `wallet new` makes a key file.")


@wallet_app.callback(invoke_without_command=True)
def wallet_show(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Option("--server", "-s", help="Show balances of its assets.")] = None,
    rpc_url: Annotated[
        list[str] | None, typer.Option("--rpc-url", help="An EVM JSON-RPC URL to read balances on.")
    ] = None,
    key_file: KeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Address, and balances of the server's assets on the given chains."""
    if ctx.invoked_subcommand is not None:
        return
    _show_wallet(server, rpc_url or [], key_file, as_json=as_json)


@_runs()
async def _show_wallet(
    server: str | None, rpc_urls: list[str], key_file: Path | None, *, as_json: bool
) -> None:
    wallet = load_wallet(key_file)
    balances = []
    if server is not None and rpc_urls:
        async with AsyncStudio(server) as studio:
            offers = await studio.offers()
        for rpc in rpc_urls:
            network = f"eip155:{await chain_id(rpc)}"
            for offer in (o for o in offers if o["network"] == network):
                units = await token_balance(rpc, offer["asset"], wallet.address)
                balances.append({**offer, "balance": Price(units).usd})
    if as_json:
        _print_json({"address": wallet.address, "balances": balances})
        return
    typer.echo(wallet.address)
    for row in balances:
        typer.echo(f"  {row['network']} {row['asset']}: ${row['balance']}")


@wallet_app.command("new")
def wallet_new(
    path: Annotated[
        Path, typer.Argument(help="Where to write the key (mode 0600; never overwritten).")
    ] = Path("wallet.key"),
) -> None:
    """Make a new key file; print its address."""
    try:
        made = write_key_file(path)
    except FileExistsError:
        err.print(f"[red]error (file_exists):[/red] {path} exists; not overwritten", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(made.address)
    err.print(f"wrote {path} (0600). Use it with --key-file {path} or ${KEY_ENV}.", highlight=False)


def mcp(
    server: ServerOpt = "http://127.0.0.1:8402",
    mode: Annotated[
        str | None,
        typer.Option(
            help="wallet: pay from this key; x402: agents pay (x402 MCP transport) [default: "
            "wallet when a key is set, else x402]."
        ),
    ] = None,
    transport: Annotated[str, typer.Option(help="stdio or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for --transport http.")] = 8765,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where downloaded files are saved.")] = Path("out"),
    max_usd_per_call: Annotated[
        str | None, typer.Option(help="Wallet mode: refuse calls above this.")
    ] = None,
    max_usd_session: Annotated[
        str | None, typer.Option(help="Wallet mode: stop paying past this total.")
    ] = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Serve the MCP tools list_models, quote, generate_image, generate_video, job_status, download."""
    from studio402.mcp.server import run as run_mcp
    from studio402.mcp.tools import Mode, StudioTools

    try:
        wallet = load_wallet(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None
        chosen = Mode(mode) if mode else (Mode.WALLET if wallet is not None else Mode.X402)
        limits = SpendLimits(
            per_call=Price.from_usd(max_usd_per_call) if max_usd_per_call else None,
            per_session=Price.from_usd(max_usd_session) if max_usd_session else None,
        )
        studio = AsyncStudio(server, wallet if chosen is Mode.WALLET else None, limits=limits)
        tools = StudioTools(studio, chosen, out)
    except (StudioError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if transport not in ("stdio", "http"):
        err.print("[red]error:[/red] --transport is stdio or http", highlight=False)
        raise typer.Exit(1)
    run_mcp(tools, "stdio" if transport == "stdio" else "http", host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add the payer's commands to the `studio402` app."""
    for command in (generate, quote, jobs, job, mcp):
        app.command(rich_help_panel="Pay and generate")(command)
    app.add_typer(wallet_app, name="wallet", rich_help_panel="Pay and generate")
