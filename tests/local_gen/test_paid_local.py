"""Paid jobs served by tiny random-weight pipelines through the production loader, offline: the official
x402 client pays on the devnet, the job runs in a GPU worker process, and the result decodes with the
requested size (and frame count). A model folder that is missing is "not installed" and the chain falls
through to the next backend."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from studio402.catalog import CATALOG
from studio402.chain.devnet import Devnet
from studio402.cli.backends import check_routes
from studio402.wiring import build_registry
from tests.devnet_fixture import new_payer
from tests.paid_support import PaidServer, pay_and_wait, running_server

STEPS = 2
TINY = 64 * 64  # generation area: the tiny models render ~64 px, frames are resized to the request


def provider(folder: Path, pipeline: str, **options: Any) -> dict[str, Any]:
    return {
        "type": "diffusers",
        "options": {
            "model_path": str(folder),
            "pipeline": pipeline,
            "steps": STEPS,
            "max_pixels": TINY,
            **options,
        },
    }


@pytest.fixture(scope="module")
async def local_server(
    devnet: Devnet, tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PaidServer]:
    providers = {
        "sd": provider(tiny_models["sd"], "text-to-image"),
        "flux": provider(tiny_models["flux"], "text-to-image"),
        "wan-t2v": provider(tiny_models["wan_t2v"], "text-to-video", fps=4),
        "wan-i2v": provider(tiny_models["wan_i2v"], "image-to-video", fps=4),
        "ltx-i2v": provider(tiny_models["ltx_i2v"], "image-to-video", fps=8),
        "ghost": provider(tmp_path_factory.mktemp("empty") / "no-such-model", "text-to-image"),
    }
    routes = {
        "nano-banana": ["sd"],
        "flux-2-pro": ["flux"],
        "wan-2.6/t2v": ["wan-t2v"],
        "veo-3.1-fast": ["wan-i2v"],
        "grok-video": ["ltx-i2v"],
        "grok/generate": ["ghost", "preview"],
    }
    overrides = {"backends.providers": providers, "backends.routes": routes}
    async with running_server(devnet, tmp_path_factory.mktemp("data"), overrides=overrides) as server:
        yield server


def data_url(color: str, size: tuple[int, int] = (256, 192)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def download(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(url)
    assert response.status_code == 200
    return response.content


async def paid(server: PaidServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    payer = await new_payer(server.devnet, 20_000_000)
    job = await pay_and_wait(server, payer.key, path, body, timeout=110)
    assert job["status"] == "complete", job
    return job


def video_facts(data: bytes) -> tuple[str, int, int, int]:
    with av.open(io.BytesIO(data)) as container:
        assert isinstance(container, av.container.InputContainer)
        ctx = container.streams.video[0].codec_context
        frames = sum(1 for _ in container.decode(video=0))
        return ctx.name, ctx.width, ctx.height, frames


async def test_sd_text_to_image_then_edit_on_the_same_weights(local_server: PaidServer) -> None:
    job = await paid(
        local_server, "/api/generate/nano-banana/generate", {"prompt": "a red boat", "imageSize": "512"}
    )
    assert job["backend"] == "sd"
    image = Image.open(io.BytesIO(await download(job["result"]["imageUrl"])))
    assert image.size == (512, 512)
    body = {"prompt": "a paper boat", "aspectRatio": "4:3", "imageSize": "512", "images": [data_url("navy")]}
    edited = await paid(local_server, "/api/generate/nano-banana/edit", body)
    assert edited["backend"] == "sd"
    image = Image.open(io.BytesIO(await download(edited["result"]["imageUrl"])))
    assert image.size[0] > image.size[1]  # 4:3


async def test_flux_text_to_image(local_server: PaidServer) -> None:
    body = {"prompt": "a lighthouse", "aspect_ratio": "16:9", "output_format": "jpg"}
    job = await paid(local_server, "/api/generate/flux-2-pro/generate", body)
    assert job["backend"] == "flux"
    image = Image.open(io.BytesIO(await download(job["result"]["imageUrl"])))
    assert image.format == "JPEG" and image.width > image.height


async def test_wan_text_to_video_frames_at_the_model_fps(local_server: PaidServer) -> None:
    body = {"prompt": "waves at night", "duration": "5", "size": "1280*720", "negativePrompt": "blur"}
    job = await paid(local_server, "/api/generate/wan-2.6/t2v", body)
    assert job["backend"] == "wan-t2v"
    codec, width, height, frames = video_facts(await download(job["result"]["videoUrl"]))
    assert (codec, width, height) == ("h264", 1280, 720)
    assert frames == 21  # 5 s at 4 fps, as Wan counts frames (4k + 1)
    assert Image.open(io.BytesIO(await download(job["result"]["thumbnailUrl"]))).width > 0


async def test_wan_first_and_last_frame(local_server: PaidServer) -> None:
    body = {
        "prompt": "a cat",
        "durationSeconds": "4",
        "resolution": "720p",
        "image": data_url("red"),
        "lastFrame": data_url("blue"),
    }
    job = await paid(local_server, "/api/generate/veo-3.1-fast/generate", body)
    assert job["backend"] == "wan-i2v"
    codec, width, height, frames = video_facts(await download(job["result"]["videoUrl"]))
    assert (codec, width, height, frames) == ("h264", 1280, 720, 17)


async def test_ltx_image_to_video(local_server: PaidServer) -> None:
    body = {"prompt": "a dog", "duration": "3", "resolution": "480p", "image": data_url("green")}
    job = await paid(local_server, "/api/generate/grok-video/generate", body)
    assert job["backend"] == "ltx-i2v"
    codec, width, height, frames = video_facts(await download(job["result"]["videoUrl"]))
    assert (codec, width, height, frames) == ("h264", 854, 480, 25)  # 3 s at 8 fps, 8k + 1


async def test_missing_model_is_not_installed_and_the_chain_falls_through(local_server: PaidServer) -> None:
    registry = build_registry(local_server.settings, CATALOG)  # what `studio402 backends check` runs
    rows = {r["route"]: r for r in check_routes(registry)}
    await registry.aclose()
    ghost = rows["grok/generate"]["backends"][0]
    assert ghost["backend"] == "ghost" and ghost["missing"][0].startswith("not installed")
    assert rows["grok/generate"]["servedBy"] == "preview"
    assert rows["nano-banana/generate"]["servedBy"] == "sd"
    job = await paid(local_server, "/api/generate/grok/generate", {"prompt": "a storm"})
    assert job["backend"] == "preview"
