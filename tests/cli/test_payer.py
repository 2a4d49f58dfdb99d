"""The payer's commands run as the `studio402` executable against a real server on the devnet: they pay,
sign in, wait and save real files; `--json` prints one object; errors print the problem code."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from studio402.chain.devnet import Devnet
from tests.devnet_fixture import Payer, new_payer
from tests.paid_support import PaidServer, running_server, transfers_from

CLI = str(Path(sys.executable).with_name("studio402"))


@pytest.fixture(scope="module")
async def server(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PaidServer]:
    async with running_server(devnet, tmp_path_factory.mktemp("payer-cli")) as running:
        yield running


async def run(*args: str, cwd: Path, key: str | None = None) -> tuple[int, str, str]:
    """The CLI in a subprocess (without blocking the loop that serves the API)."""
    env = {k: v for k, v in os.environ.items() if k != "STUDIO402_WALLET_KEY"}
    if key is not None:
        env["STUDIO402_WALLET_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        CLI, *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


async def test_generate_an_image_prints_one_json_object(server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(server.devnet, 2_000_000)
    code, out, err = await run(
        "quote",
        "nano-banana",
        "generate",
        "-s",
        server.base,
        "-p",
        "a red kite",
        "aspectRatio=9:16",
        "--json",
        cwd=tmp_path,
    )
    assert code == 0, err
    price = loads(out)["price"]
    code, out, err = await run(
        "generate",
        "nano-banana",
        "generate",
        "--server",
        server.base,
        "--prompt",
        "a red kite",
        "aspectRatio=9:16",
        "--out",
        "media",
        "--json",
        cwd=tmp_path,
        key=payer.key,
    )
    assert code == 0, err
    done = loads(out)
    assert set(done) >= {"jobId", "status", "files", "price"}
    assert done["status"] == "complete" and done["price"] == price
    (file,) = done["files"]
    image = Image.open(tmp_path / file)
    assert image.height > image.width  # 9:16
    sent = await transfers_from(server.devnet, payer.address)
    assert [value for _, value, _ in sent] == [int(price["micros"])]

    code, out, err = await run("jobs", "-s", server.base, "--json", cwd=tmp_path, key=payer.key)
    assert code == 0, err
    assert [j["jobId"] for j in loads(out)["jobs"]] == [done["jobId"]]
    code, out, err = await run("job", done["jobId"], "-s", server.base, "--json", cwd=tmp_path, key=payer.key)
    assert code == 0 and loads(out)["status"] == "complete"


async def test_generate_a_video_with_a_key_file(server: PaidServer, tmp_path: Path) -> None:
    code, out, err = await run("wallet", "new", "me.key", cwd=tmp_path)
    assert code == 0, err
    key_file = tmp_path / "me.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    address = out.strip()
    again, _, err = await run("wallet", "new", "me.key", cwd=tmp_path)
    assert again == 1 and "file_exists" in err  # never overwrites a key
    await server.devnet.fund(address, 5_000_000)
    code, out, err = await run(
        "wallet",
        "--server",
        server.base,
        "--rpc-url",
        server.devnet.info.rpc_url,
        "--key-file",
        "me.key",
        "--json",
        cwd=tmp_path,
    )
    assert code == 0, err
    shown = loads(out)
    assert shown["address"] == address and [b["balance"] for b in shown["balances"]] == ["5"]
    code, out, err = await run(
        "generate",
        "veo-3.1-fast",
        "generate",
        "-s",
        server.base,
        "-p",
        "waves",
        "durationSeconds=4",
        "--key-file",
        "me.key",
        "--events",  # waits on the job's event stream
        "--json",
        cwd=tmp_path,
    )
    assert code == 0, err
    done = loads(out)
    video = next(tmp_path / f for f in done["files"] if f.endswith(".mp4"))
    with av.open(str(video)) as container:
        assert isinstance(container, av.container.InputContainer)
        assert sum(1 for _ in container.decode(video=0)) == 96


async def test_local_images_go_through_the_paid_upload(server: PaidServer, tmp_path: Path) -> None:
    payer: Payer = await new_payer(server.devnet, 2_000_000)
    Image.new("RGB", (300, 200), (20, 90, 200)).save(tmp_path / "in.png")
    code, out, err = await run(
        "generate",
        "nano-banana",
        "edit",
        "-s",
        server.base,
        "-p",
        "paint it red",
        "--image",
        "in.png",
        "--json",
        cwd=tmp_path,
        key=payer.key,
    )
    assert code == 0, err
    assert loads(out)["status"] == "complete"
    assert len(await transfers_from(server.devnet, payer.address)) == 2  # the upload slot and the edit


async def test_errors_print_the_problem_code(server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(server.devnet, 1_000_000)
    code, out, err = await run(
        "generate",
        "nano-banana",
        "generate",
        "-s",
        server.base,
        "-p",
        "x",
        "aspectRatio=7:3",
        "--json",
        cwd=tmp_path,
        key=payer.key,
    )
    assert code == 1 and "validation_failed" in err
    assert loads(out)["error"]["code"] == "validation_failed"
    code, _, err = await run(
        "generate",
        "nano-banana",
        "generate",
        "-s",
        server.base,
        "-p",
        "x",
        "--max-usd",
        "0.001",
        cwd=tmp_path,
        key=payer.key,
    )
    assert code == 1 and "spend_limit_exceeded" in err
    code, _, err = await run("jobs", "-s", server.base, cwd=tmp_path)
    assert code == 1 and "no_wallet" in err
    assert await transfers_from(server.devnet, payer.address) == []
