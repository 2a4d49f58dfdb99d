"""`studio402` command line: serve, init, and the operator tools (devnet, ledger, backends)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def main() -> None:
    app()
