"""The layering of the application services and the composition root, read from the sources (ast): app/
imports only the parts below it, wiring.py builds from app/ and those parts, and nothing below imports
either of them. The edges (api/, cli/, sdk/) sit on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import studio402

SRC = Path(studio402.__file__).parent
EDGES = ("studio402.api", "studio402.cli", "studio402.sdk", "studio402.mcp")
ABOVE_LOWER = (*EDGES, "studio402.app", "studio402.wiring")
BELOW_APP = ("payments", "db", "jobs", "media", "backends", "chain", "solana", "storage", "auth", "catalog")


def imported(path: Path, root: Path = SRC.parent) -> set[str]:
    """Every module `path` imports, as absolute names (relative imports resolved from its package)."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else ()
            base = ".".join([*parent, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def violations(paths: list[Path], forbidden: tuple[str, ...], root: Path = SRC.parent) -> list[str]:
    return sorted(
        f"{path.relative_to(root)} imports {name}"
        for path in paths
        for name in imported(path, root)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def modules(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((SRC / package).rglob("*.py"))]


def test_app_imports_no_edge_and_not_the_wiring() -> None:
    assert len(modules("app")) >= 4
    assert violations(modules("app"), (*EDGES, "studio402.wiring")) == []


def test_the_wiring_imports_no_edge() -> None:
    assert violations([SRC / "wiring.py"], EDGES) == []


@pytest.mark.parametrize("package", BELOW_APP)
def test_nothing_below_imports_the_app_services_or_the_wiring(package: str) -> None:
    assert violations(modules(package), ABOVE_LOWER) == []


def test_a_forbidden_import_is_reported(tmp_path: Path) -> None:
    """The check can fail: absolute and relative imports of an edge are caught, lower ones pass."""
    probe = tmp_path / "studio402" / "app" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import studio402.payments.engine\nfrom studio402.api import deps\nfrom ..cli.main import app\n"
        "from . import reconciler\n"
    )
    assert violations([probe], (*EDGES, "studio402.wiring"), root=tmp_path) == [
        "studio402/app/probe.py imports studio402.api",
        "studio402/app/probe.py imports studio402.api.deps",
        "studio402/app/probe.py imports studio402.cli.main",
        "studio402/app/probe.py imports studio402.cli.main.app",
    ]
