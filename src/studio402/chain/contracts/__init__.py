"""The devnet's test token: Vyper source (`TestUSDC.vy`) and its checked-in compiled output (`TestUSDC.json`).

Runtime code only reads the JSON, so vyper stays a dev-only dependency; `python -m studio402.chain.compile
--check` proves the JSON still matches the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
TOKEN_SOURCE = CONTRACTS_DIR / "TestUSDC.vy"
TOKEN_ARTIFACT = CONTRACTS_DIR / "TestUSDC.json"


@dataclass(frozen=True, slots=True)
class TokenArtifact:
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes  # creation code; constructor arguments are appended ABI-encoded


@cache
def load_token_artifact() -> TokenArtifact:
    data = json.loads(TOKEN_ARTIFACT.read_text(encoding="utf-8"))
    return TokenArtifact(abi=tuple(data["abi"]), bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")))
