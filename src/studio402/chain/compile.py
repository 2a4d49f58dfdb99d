"""Compile the devnet token with vyper and check the committed JSON against it.

    python -m studio402.chain.compile --write   # regenerate contracts/TestUSDC.json
    python -m studio402.chain.compile --check   # exit 1 if the JSON differs from a fresh compile (CI)

vyper is a dev-only dependency, imported only when compiling.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from studio402.chain.contracts import TOKEN_ARTIFACT, TOKEN_SOURCE
from studio402.errors import ConfigError

_DESCRIPTION = "Compile the devnet token with vyper and check the committed JSON against it."
VYPER_VERSION = "0.4.3"
# Pinned so the bytecode does not depend on the compiler's default and runs on any post-Dencun EVM.
EVM_VERSION = "cancun"


def compile_token() -> dict[str, Any]:
    """Compile TestUSDC.vy; returns {"abi", "bytecode", "vyper", "evmVersion"}."""
    return dict(json.loads(_compile_source(TOKEN_SOURCE.read_text(encoding="utf-8"))))


@cache
def _compile_source(source: str) -> str:
    # Cached per source text (compiling takes seconds); JSON text so callers get fresh objects.
    try:
        import vyper  # type: ignore[import-untyped]  # dev-only dependency without type hints
        from vyper.compiler.settings import Settings  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("compiling the token needs the dev dependency vyper==0.4.3") from exc
    if vyper.__version__ != VYPER_VERSION:
        raise ConfigError(f"vyper {VYPER_VERSION} required, found {vyper.__version__}")
    out = vyper.compile_code(
        source,
        contract_path=TOKEN_SOURCE.name,  # a fixed name: the output must not depend on the checkout path
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    return json.dumps(
        {"abi": out["abi"], "bytecode": out["bytecode"], "vyper": VYPER_VERSION, "evmVersion": EVM_VERSION}
    )


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1) + "\n"


def artifact_is_current(artifact: Path = TOKEN_ARTIFACT) -> bool:
    """True when the committed JSON equals a fresh compile of the committed source."""
    if not artifact.exists():
        return False
    committed = json.loads(artifact.read_text(encoding="utf-8"))
    return bool(committed == compile_token())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio402.chain.compile", description=_DESCRIPTION)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    mode.add_argument("--write", action="store_true", help="regenerate the committed JSON")
    args = parser.parse_args(argv)
    if args.write:
        TOKEN_ARTIFACT.write_text(render(compile_token()), encoding="utf-8")
        print(f"wrote {TOKEN_ARTIFACT}")
        return 0
    if artifact_is_current():
        print(f"{TOKEN_ARTIFACT.name} is up to date")
        return 0
    print(
        f"{TOKEN_ARTIFACT.name} differs from a fresh compile of {TOKEN_SOURCE.name}; "
        "run: python -m studio402.chain.compile --write",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
