"""`studio402 worker`: a job worker process of the scale-out layout (PostgreSQL + procrastinate)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import typer

from studio402 import failpoints
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, settings_from
from studio402.cli.db import require_schema
from studio402.errors import Studio402Error


def worker(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=100_000, help="Jobs this process runs at once (they mostly wait).")
    ] = 64,
) -> None:
    """Run paid jobs from the PostgreSQL queue until SIGTERM/SIGINT (needs a PostgreSQL database.url)."""
    from studio402.redact import Scrubber, install_log_redaction
    from studio402.wiring import Wiring

    settings = settings_from(config, data_dir)
    require_schema(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "x402", "procrastinate"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    install_log_redaction(Scrubber.from_settings(settings))

    async def main() -> None:
        failpoints.arm(settings.jobs.failpoints)
        wiring = Wiring(settings)
        await wiring.start()
        try:
            work = asyncio.create_task(wiring.queue_worker(concurrency).run())
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, work.cancel)
            typer.echo(f"worker {wiring.owner}: running jobs (concurrency {concurrency})", err=True)
            with contextlib.suppress(asyncio.CancelledError):
                await work
        finally:
            await wiring.stop()

    try:
        asyncio.run(main())
    except Studio402Error as exc:
        fail(exc)
