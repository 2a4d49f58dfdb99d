"""The committed TestUSDC.json is exactly what vyper 0.4.3 makes of TestUSDC.vy (CI runs the same check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio402.chain.compile import artifact_is_current, compile_token, main
from studio402.chain.contracts import TOKEN_ARTIFACT, load_token_artifact


def test_committed_json_equals_a_fresh_compile() -> None:
    committed = json.loads(TOKEN_ARTIFACT.read_text(encoding="utf-8"))
    fresh = compile_token()
    assert committed["vyper"] == "0.4.3"
    assert committed == fresh
    assert load_token_artifact().bytecode.hex() == fresh["bytecode"].removeprefix("0x")
    assert main(["--check"]) == 0


def test_a_stale_artifact_is_detected(tmp_path: Path) -> None:
    stale = json.loads(TOKEN_ARTIFACT.read_text(encoding="utf-8"))
    stale["bytecode"] = stale["bytecode"][:-2] + ("00" if not stale["bytecode"].endswith("00") else "01")
    path = tmp_path / "TestUSDC.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    assert not artifact_is_current(path)
    assert not artifact_is_current(tmp_path / "missing.json")


def test_check_command_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "studio402.chain.compile", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--check" in done.stdout


def test_abi_has_the_eip3009_surface() -> None:
    names = {e.get("name") for e in load_token_artifact().abi}
    expected = {
        "transferWithAuthorization",
        "receiveWithAuthorization",
        "cancelAuthorization",
        "authorizationState",
        "DOMAIN_SEPARATOR",
        "Transfer",
        "AuthorizationUsed",
        "AuthorizationCanceled",
        "mint",
        "balanceOf",
    }
    assert expected <= names
