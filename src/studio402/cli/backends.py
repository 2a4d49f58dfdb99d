"""`studio402 backends check`: which backend would serve each route, and is it ready. `--probe` (operators
only) also makes one cheap authenticated read per configured upstream (list models, credits, account) to show
its credentials work, without generating anything; only the HTTP status is shown, never the key."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from studio402.catalog import CATALOG
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, print_json, settings_from
from studio402.errors import Studio402Error

app = typer.Typer(no_args_is_help=True, help="Generation backends.")

ProbeOpt = Annotated[
    bool,
    typer.Option(
        "--probe", help="Also make one cheap authenticated read per upstream (no generation, nothing billed)."
    ),
]


def retired_note(name: str, backend: Any, route_key: str) -> str | None:
    """Say so when the upstream API behind a backend's route was shut down (e.g. the OpenAI Videos API)."""
    retired_on = getattr(backend, "retired_on", None)
    if not retired_on or route_key not in (getattr(backend, "routes", None) or ()):
        return None
    return f"{name}: retired upstream on {retired_on}; off unless options.allow_retired = true"


def check_routes(registry: Any) -> list[dict[str, Any]]:
    rows = []
    for route in CATALOG:
        chain = registry.names_for(route.key)
        entries, notes = [], []
        for name in chain:
            backend = registry.get(name)
            missing = backend.missing_settings() if hasattr(backend, "missing_settings") else []
            entry = {"backend": name, "supports": backend.supports(route.key), "missing": missing}
            note = retired_note(name, backend, route.key)
            if note:
                entry["note"] = note
                notes.append(note)
            entries.append(entry)
        ready = [e["backend"] for e in entries if e["supports"] and not e["missing"]]
        row = {"route": route.key, "chain": list(chain), "servedBy": ready[0] if ready else None}
        if notes:
            row["notes"] = notes
        rows.append({**row, "backends": entries})
    return rows


async def probe_backends(registry: Any) -> list[dict[str, Any]]:
    """Each upstream's cheap authenticated read, all at once; the local preview has nothing to probe."""
    upstreams = [b for b in registry.all() if hasattr(b, "probe")]
    results = await asyncio.gather(*(b.probe() for b in upstreams))
    return [
        {"backend": b.name, "ok": r.ok, "status": r.status, "detail": r.detail}
        for b, r in zip(upstreams, results, strict=True)
    ]


async def _check(registry: Any, probe: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    try:
        return check_routes(registry), await probe_backends(registry) if probe else None
    finally:
        await registry.aclose()


@app.command()
def check(config: ConfigOpt = None, data_dir: DataDirOpt = None, probe: ProbeOpt = False) -> None:
    """Per route: the configured chain, the backend that would serve it, and missing credentials."""
    from studio402.wiring import build_registry

    try:
        registry = build_registry(settings_from(config, data_dir), CATALOG)
    except Studio402Error as exc:
        fail(exc)
    rows, probes = asyncio.run(_check(registry, probe))
    print_json(rows if probes is None else {"routes": rows, "probes": probes})
    if any(r["servedBy"] is None for r in rows) or any(not p["ok"] for p in probes or ()):
        raise typer.Exit(1)
