"""studio402.sdk stands alone: it imports only the standard library, third-party packages and itself."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import studio402.sdk


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import of {node.module}")
    return names


def test_sdk_imports_nothing_from_the_server_side() -> None:
    package = Path(studio402.sdk.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) >= 5
    offending = []
    for source in sources:
        for name in imported_modules(source):
            top = name.split(".")[0]
            if top == "studio402":
                if not (name == "studio402.sdk" or name.startswith("studio402.sdk.")):
                    offending.append(f"{source.name}: {name}")
            elif top not in sys.stdlib_module_names and top != "__future__":
                assert importlib.util.find_spec(top) is not None, f"{source.name}: {name} is not installed"
    assert offending == []


def test_the_check_catches_a_server_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from studio402.services import Services\n")
    assert "studio402.services" in imported_modules(bad)
