"""`studio402 backends check`: which backend would serve each route, and is it ready."""

from __future__ import annotations

from typing import Any

import typer

from studio402.catalog import CATALOG
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, print_json, settings_from
from studio402.errors import Studio402Error

app = typer.Typer(no_args_is_help=True, help="Generation backends.")


def check_routes(registry: Any) -> list[dict[str, Any]]:
    rows = []
    for route in CATALOG:
        chain = registry.names_for(route.key)
        entries = []
        for name in chain:
            backend = registry.get(name)
            missing = backend.missing_settings() if hasattr(backend, "missing_settings") else []
            entries.append({"backend": name, "supports": backend.supports(route.key), "missing": missing})
        ready = [e["backend"] for e in entries if e["supports"] and not e["missing"]]
        rows.append(
            {
                "route": route.key,
                "chain": list(chain),
                "servedBy": ready[0] if ready else None,
                "backends": entries,
            }
        )
    return rows


@app.command()
def check(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Per route: the configured chain, the backend that would serve it, and missing credentials."""
    from studio402.services import build_registry

    try:
        registry = build_registry(settings_from(config, data_dir), CATALOG)
    except Studio402Error as exc:
        fail(exc)
    rows = check_routes(registry)
    print_json(rows)
    if any(r["servedBy"] is None for r in rows):
        raise typer.Exit(1)
