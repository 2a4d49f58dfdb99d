"""Catalog requests -> generation plans, refusals before payment, the offline guard: no torch needed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from studio402.backends.base import Ask, BackendJob, MediaInput
from studio402.backends.local_gen.backend import DiffusersBackend
from studio402.backends.local_gen.families import FAMILIES, PipelineKind
from studio402.backends.local_gen.offline import NetworkBlocked, block_network
from studio402.backends.local_gen.options import LocalOptions, locate
from studio402.backends.local_gen.plan import build_plan, frame_count, generation_size, refusal
from studio402.catalog import CATALOG
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.errors import ConfigError

WAN = FAMILIES["WanPipeline"]
WAN_I2V = FAMILIES["WanImageToVideoPipeline"]
LTX_I2V = FAMILIES["LTXImageToVideoPipeline"]


def image(field: str, index: int | None = None) -> InputFacts:
    loc: tuple[str | int, ...] = (field,) if index is None else (field, index)
    return InputFacts(loc, MediaKind.IMAGE, "image/png", 100, 64, 64, None)


def test_frames_follow_the_model_count() -> None:
    assert frame_count(5, 16, 4) == 81  # Wan 2.1: 81 frames = 5 s
    assert frame_count(5, 24, 8) == 121  # LTX
    assert frame_count(6, 8, 4) == 49  # CogVideoX
    assert frame_count(0.1, 16, 4) == 5  # never less than one step


def test_generation_size_keeps_aspect_within_the_model_area() -> None:
    assert generation_size(1280, 720, WAN, 832 * 480) == (832, 464)
    assert generation_size(512, 512, FAMILIES["StableDiffusionPipeline"], 512 * 512) == (512, 512)
    w, h = generation_size(720, 1280, LTX_I2V, 704 * 480)
    assert w % 32 == 0 and h % 32 == 0 and h > w


def test_plan_maps_catalog_fields() -> None:
    options = LocalOptions.parse("w", {"model_path": "/x", "pipeline": "image-to-video", "steps": 3})
    first = MediaInput(("image",), MediaKind.IMAGE, "image/png", b"first", "")
    last = MediaInput(("lastFrame",), MediaKind.IMAGE, "image/png", b"last", "")
    params = {"prompt": "p", "durationSeconds": "8", "resolution": "720p", "negativePrompt": "blur"}
    job = BackendJob("j", "veo-3.1", "generate", params, (first, last), seed=7)
    plan = build_plan(job, CATALOG.get("veo-3.1", "generate"), options, WAN_I2V)
    assert (plan.out_width, plan.out_height, plan.num_frames, plan.fps) == (1280, 720, 129, 16)
    assert (plan.image, plan.last_image, plan.negative_prompt, plan.seed, plan.steps) == (
        b"first",
        b"last",
        "blur",
        7,
        3,
    )
    assert plan.width * plan.height <= 832 * 480


@pytest.mark.parametrize(
    ("kind", "family", "params", "inputs", "reason"),
    [
        (PipelineKind.TEXT_TO_VIDEO, WAN, {}, [image("image")], "text-to-video"),
        (PipelineKind.IMAGE_TO_VIDEO, WAN_I2V, {}, [], "needs a first frame"),
        (PipelineKind.IMAGE_TO_VIDEO, LTX_I2V, {}, [image("image"), image("lastFrame")], "no last frame"),
        (PipelineKind.IMAGE_TO_VIDEO, WAN_I2V, {}, [image("referenceImages", 0)], "no reference images"),
        (PipelineKind.TEXT_TO_VIDEO, WAN, {"generate_audio": True}, [], "no audio"),
        (PipelineKind.TEXT_TO_IMAGE, FAMILIES["FluxPipeline"], {"negative_prompt": "x"}, [], "negative"),
        (PipelineKind.TEXT_TO_IMAGE, WAN, {}, [image("images", 0), image("images", 1)], "one image"),
        (PipelineKind.IMAGE_TO_IMAGE, FAMILIES["StableDiffusionPipeline"], {}, [], "only edits"),
    ],
)
def test_refusals(
    kind: PipelineKind, family: object, params: dict[str, object], inputs: list[InputFacts], reason: str
) -> None:
    ask = Ask("m", "op", params, tuple(inputs))
    found = refusal(ask, kind, family)  # type: ignore[arg-type]
    assert found is not None and reason in found


def test_first_and_last_frame_on_wan_is_served() -> None:
    ask = Ask("veo-3.1", "generate", {}, (image("image"), image("lastFrame")))
    assert refusal(ask, PipelineKind.IMAGE_TO_VIDEO, WAN_I2V) is None


def test_not_installed_without_a_model_folder(tmp_path: Path) -> None:
    options = LocalOptions.parse("x", {"model_path": str(tmp_path / "none"), "pipeline": "text-to-image"})
    backend = DiffusersBackend("x", options)
    assert backend.missing_settings()[0].startswith("not installed")
    assert (backend.refusal(Ask("grok", "generate", {"prompt": "p"})) or "").startswith("not installed")
    assert backend.supports("grok/generate") and not backend.supports("veo-3.1/generate")
    wrong = tmp_path / "wan"
    wrong.mkdir()
    (wrong / "model_index.json").write_text('{"_class_name": "WanPipeline"}')
    mismatch = locate(LocalOptions.parse("x", {"model_path": str(wrong), "pipeline": "image-to-video"}))
    assert isinstance(mismatch, str) and "serves text-to-video" in mismatch


def test_uncached_hub_id_is_not_installed(tmp_path: Path) -> None:
    raw = {"model_path": "stabilityai/sd-turbo", "pipeline": "text-to-image", "cache_dir": str(tmp_path)}
    found = locate(LocalOptions.parse("x", raw))
    assert isinstance(found, str) and found.startswith("not installed")


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        LocalOptions.parse("x", {"model_path": "/m", "pipeline": "text-to-audio"})
    with pytest.raises(ConfigError):
        LocalOptions.parse("x", {"model_path": "/m", "pipeline": "text-to-image", "speed": 2})
    with pytest.raises(ConfigError):
        LocalOptions.parse("x", {"pipeline": "text-to-image"})


def test_the_worker_guard_refuses_non_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", socket.socket.connect)  # undone after the test
    monkeypatch.setattr(socket.socket, "connect_ex", socket.socket.connect_ex)
    block_network()
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect(("93.184.216.34", 443))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as s:
            s.connect(server.getsockname())  # loopback stays allowed
