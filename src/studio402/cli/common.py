"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from studio402.config import Settings, load_settings
from studio402.errors import Studio402Error

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (see `studio402 init`).")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="All state lives here [default: ./.studio402].")
]


def settings_from(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, overrides={"data_dir": data_dir, **overrides})


def fail(exc: Studio402Error) -> NoReturn:
    typer.secho(f"error ({exc.code}): {exc.detail}", fg="red", err=True)
    raise typer.Exit(2)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
