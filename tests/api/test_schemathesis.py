"""Property-based run of schemathesis against our own /api/openapi.json: no input may cause a 5xx."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from studio402.api.app import create_app
from studio402.config import Settings
from studio402.wiring import Wiring
from tests.conftest import STATIC_OFFER
from tests.server import free_port, serve


async def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings().with_overrides(**{"server.port": port})
    app = create_app(Wiring.with_offers(settings, [STATIC_OFFER]))
    async with serve(app, port) as base:
        cli = Path(sys.executable).with_name("schemathesis")
        proc = await asyncio.create_subprocess_exec(
            str(cli),
            "run",
            f"{base}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--seed",
            "402",
            "--suppress-health-check",
            "all",
            "--report-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", text)
    assert summary is not None, text[-2000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed > 1000, text[-2000:]
    operations = re.search(r"Tested: (\d+)", text)
    assert operations is not None and int(operations.group(1)) >= 27
