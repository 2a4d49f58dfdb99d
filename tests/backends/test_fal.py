"""The fal queue adapter through the real runner against a fake queue.fal.run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio402.backends.base import Ask
from studio402.backends.factory import build_backend
from studio402.backends.fal import FalBackend
from studio402.config import ProviderSettings
from studio402.errors import ConfigError
from studio402.jobs.model import JobStatus
from tests.backends.upstream_support import (
    DEADLINE,
    assert_complete,
    assert_failed,
    cancel_midway,
    fake_fixtures,
    geometry_of,
    harness_for,
    image_size,
    mp4_input,
    png_input,
    provider,
    restart_midway,
    run_recording_sleeps,
    sent,
    video_size,
)
from tests.fakes.fake_server import API_KEY, Outcome, Scenario, decode_data_uri
from tests.fakes.fal import FakeFal

VEO = {"prompt": "a hummingbird", "durationSeconds": "6", "aspectRatio": "9:16"}
VEO_APP = "fal-ai/veo3.1/fast"
MODELS = {
    "veo-3.1-fast": VEO_APP,
    "veo-3.1": "fal-ai/veo3.1/image-to-video",  # a mode endpoint is read as its base
    "nano-banana": "fal-ai/nano-banana-2",
    "nano-banana-pro": "fal-ai/nano-banana-pro",
    "seedance-fast": "bytedance/seedance-2.0/fast",
}
FIRST, LAST = "https://x.example/first.png", "https://x.example/last.png"
REFS = ["https://x.example/r1.png", "https://x.example/r2.png"]


server, fake = fake_fixtures(
    FakeFal, lambda f: f.reset(Scenario(size=geometry_of("veo-3.1-fast/generate", VEO)))
)


def fal(fake: FakeFal, **changes: Any) -> dict[str, FalBackend]:
    settings = {"models": MODELS, **changes}
    return {"fal": FalBackend("fal", provider("fal", fake.base_url, **settings))}


def endpoint_of(fake: FakeFal) -> str:
    return list(fake.tasks.values())[-1].path


async def test_video_through_a_subpath_endpoint(fake: FakeFal, tmp_path: Path) -> None:
    async with harness_for(tmp_path, fal(fake)) as h:
        ended = await h.run((await h.submit("veo-3.1-fast/generate", VEO)).id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == geometry_of("veo-3.1-fast/generate", VEO)
    assert sent(fake) == {
        "prompt": "a hummingbird",
        "duration": "6s",  # fal's DurationEnum: "4s" | "6s" | "8s"
        "aspect_ratio": "9:16",
        "resolution": "720p",
    }
    task = next(iter(fake.tasks.values()))
    assert ended.upstream_id == f"{VEO_APP}/requests/{task.id}" and task.path == VEO_APP


@pytest.mark.parametrize(
    ("body", "inputs", "endpoint", "fields"),
    [
        ({}, [], "fal-ai/veo3.1", set()),
        ({"image": FIRST}, [("image",)], "fal-ai/veo3.1/image-to-video", {"image_url"}),
        (
            {"image": FIRST, "lastFrame": LAST},
            [("image",), ("lastFrame",)],
            "fal-ai/veo3.1/first-last-frame-to-video",
            {"first_frame_url", "last_frame_url"},
        ),
        (
            {"referenceImages": REFS, "durationSeconds": "8", "aspectRatio": "16:9"},
            [("referenceImages", 0), ("referenceImages", 1)],
            "fal-ai/veo3.1/reference-to-video",
            {"image_urls"},
        ),
    ],
)
async def test_each_veo_mode_goes_to_its_own_endpoint(
    fake: FakeFal,
    tmp_path: Path,
    body: dict[str, Any],
    inputs: list[tuple[str | int, ...]],
    endpoint: str,
    fields: set[str],
) -> None:
    request = {**VEO, "negativePrompt": "blur", **body}
    media = [png_input(loc) for loc in inputs]
    async with harness_for(tmp_path, fal(fake)) as h:
        assert_complete(await h.run((await h.submit("veo-3.1/generate", request, inputs=media)).id))
    assert endpoint_of(fake) == endpoint
    got = sent(fake)
    assert fields <= set(got) and got["duration"].endswith("s")
    images = [u for f in sorted(fields) for u in (got[f] if isinstance(got[f], list) else [got[f]])]
    assert sorted(decode_data_uri(u) or ("", b"") for u in images) == sorted(
        ("image/png", m.data) for m in media
    )
    # the reference endpoint lists no negative_prompt: it is not sent there
    assert ("negative_prompt" in got) is (endpoint != "fal-ai/veo3.1/reference-to-video")


async def test_veo_fast_reference_is_refused_before_anything_is_paid(fake: FakeFal, tmp_path: Path) -> None:
    """fal has no Veo 3.1 Fast reference-to-video endpoint: the route refuses before the 402."""
    body = {**VEO, "referenceImages": REFS, "durationSeconds": "8"}
    backend = fal(fake)["fal"]
    assert backend.refusal(Ask("veo-3.1-fast", "generate", body)) is not None
    assert backend.refusal(Ask("veo-3.1", "generate", body)) is None
    assert backend.refusal(Ask("veo-3.1-fast", "generate", VEO)) is None
    refs = [png_input(("referenceImages", 0)), png_input(("referenceImages", 1))]
    async with harness_for(tmp_path, {"fal": backend}) as h:
        ended = await h.run((await h.submit("veo-3.1-fast/generate", body, inputs=refs)).id)
    assert_failed(ended, "backend_unavailable")
    assert fake.attempts == 0


@pytest.mark.parametrize(("size", "resolution"), [("512", "0.5K"), ("1K", "1K"), ("4K", "4K")])
async def test_nano_banana_sizes_in_fal_words(
    fake: FakeFal, tmp_path: Path, size: str, resolution: str
) -> None:
    body = {"prompt": "a teapot", "imageSize": size, "aspectRatio": "4:3", "thinkingLevel": "high"}
    fake.scenario = Scenario(media="image", size=geometry_of("nano-banana/generate", body))
    async with harness_for(tmp_path, fal(fake)) as h:
        assert_complete(await h.run((await h.submit("nano-banana/generate", body)).id))
    assert sent(fake) == {
        "prompt": "a teapot",
        "aspect_ratio": "4:3",
        "resolution": resolution,
        "thinking_level": "high",  # Nano Banana 2 lists it
    }


async def test_defaults_an_endpoint_does_not_list_are_not_sent(fake: FakeFal, tmp_path: Path) -> None:
    """thinking_level is a Nano Banana 2 input only; camera_fixed is in no Seedance endpoint of fal."""
    models = {**MODELS, "nano-banana": "fal-ai/nano-banana-pro"}
    seedance = {"prompt": "a kite", "camera_fixed": True, "seed": 7}
    async with harness_for(tmp_path, fal(fake, models=models)) as h:
        fake.scenario.media = "image"
        assert_complete(await h.run((await h.submit("nano-banana/generate", {"prompt": "x"})).id))
        assert sent(fake) == {"prompt": "x", "aspect_ratio": "1:1", "resolution": "1K"}
        fake.scenario.media = "video"
        assert_complete(await h.run((await h.submit("seedance-fast/t2v", seedance)).id))
    assert endpoint_of(fake) == "bytedance/seedance-2.0/fast/text-to-video"
    assert sent(fake) == {
        "prompt": "a kite",
        "duration": "5",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "seed": 7,
        "generate_audio": False,
    }


async def test_sync_mode_answers_a_data_uri(fake: FakeFal, tmp_path: Path) -> None:
    """With `sync_mode` (an operator's extra input) fal returns the image as a data URI: still delivered."""
    body = {"prompt": "a teapot"}
    size = geometry_of("nano-banana/generate", body)
    fake.scenario = Scenario(media="image", size=size)
    options = {"inputs": {"nano-banana": {"extra": {"sync_mode": True}}}}
    async with harness_for(tmp_path, fal(fake, options=options)) as h:
        ended = await h.run((await h.submit("nano-banana/generate", body)).id)
        assert_complete(ended)
        assert image_size(await h.result_bytes(ended)) == size
    assert sent(fake)["sync_mode"] is True and fake.downloads == 0


async def test_media_inputs_map_to_fal_fields(fake: FakeFal, tmp_path: Path) -> None:
    images = [png_input(("images", 0)), png_input(("images", 1))]
    refs = [png_input(("urls", 0)), mp4_input(("urls", 1))]
    keyframes = [png_input(("urls", 0)), png_input(("urls", 1))]
    seedance = {
        "prompt": "@image1 like @video1",
        "mode": "reference",
        "urls": ["https://x.example/a.png", "https://x.example/b.mp4"],
        "urlMediaTypes": ["image", "video"],
    }
    async with harness_for(tmp_path, fal(fake)) as h:
        fake.scenario.media = "image"
        edit = {"prompt": "merge", "images": ["https://x.example/1.png", "https://x.example/2.png"]}
        assert_complete(await h.run((await h.submit("nano-banana/edit", edit, inputs=images)).id))
        assert endpoint_of(fake) == "fal-ai/nano-banana-2/edit"  # the edit mode of the configured base
        assert [decode_data_uri(u) for u in sent(fake)["image_urls"]] == [
            ("image/png", i.data) for i in images
        ]
        fake.scenario.media = "video"
        ended = await h.run((await h.submit("seedance-fast/i2v", seedance, inputs=refs)).id)
        assert_complete(ended)
        assert endpoint_of(fake) == "bytedance/seedance-2.0/fast/reference-to-video"
        assert sent(fake)["video_urls"] == [refs[1].url] and len(sent(fake)["image_urls"]) == 1
        assert sent(fake)["prompt"] == "@Image1 like @Video1"  # fal's documented spelling
        assert {"mode", "url_media_types", "urls"}.isdisjoint(sent(fake))
        keyframe = {"prompt": "go", "urls": ["https://x.example/a.png", "https://x.example/b.png"]}
        assert_complete(await h.run((await h.submit("seedance-fast/i2v", keyframe, inputs=keyframes)).id))
    assert endpoint_of(fake) == "bytedance/seedance-2.0/fast/image-to-video"
    assert {"image_url", "end_image_url"} <= set(sent(fake))


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("t2v", {"prompt": "x", "resolution": "1280x720"}),
        ("t2v", {"prompt": "x", "upscaleResolution": "4k", "outputResolution": "1080p"}),
        ("i2v", {"urls": REFS, "mode": "keyframe"}),  # prompt is optional in i2v, required by fal
    ],
)
def test_seedance_requests_fal_cannot_serve_are_refused(operation: str, params: dict[str, Any]) -> None:
    models = {"seedance": "bytedance/seedance-2.0"}
    backend = FalBackend("fal", provider("fal", "http://fal.invalid", models=models))
    assert backend.refusal(Ask("seedance", operation, params)) is not None
    servable = {k: v for k, v in params.items() if k not in ("resolution", "upscaleResolution")}
    assert backend.refusal(Ask("seedance", operation, {**servable, "prompt": "x"})) is None


async def test_unknown_endpoints_keep_the_generic_mapping_and_the_operators_list(tmp_path: Path) -> None:
    """An endpoint we do not know gets the generic mapping; `options.accepts` limits it to its schema."""
    schema = {
        "type": "object",
        "properties": {"prompt": {"type": "string"}},
        "required": ["prompt"],
        "additionalProperties": False,
    }
    server = FakeFal(Scenario(media="image", size=(64, 64)))
    server.schemas = {**server.schemas, "acme/imagine": schema}
    models = {"grok/generate": "acme/imagine"}
    async with server.running():
        async with harness_for(tmp_path, fal(server, models=models)) as h:
            ended = await h.run((await h.submit("grok/generate", {"prompt": "x"})).id)
        assert_failed(ended, "invalid_request")  # aspect_ratio went along: nothing said it is not taken
        options = {"accepts": {"acme/imagine": ["prompt"]}}
        (tmp_path / "2").mkdir()
        async with harness_for(tmp_path / "2", fal(server, models=models, options=options)) as h:
            assert_complete(await h.run((await h.submit("grok/generate", {"prompt": "x"})).id))
    assert sent(server) == {"prompt": "x"}


@pytest.mark.parametrize(
    ("outcome", "media", "code"),
    [
        (Outcome.MODERATED, "video", "moderated"),
        (Outcome.FLAGGED, "image", "moderated"),
        (Outcome.NO_MEDIA, "video", "no_media"),
        (Outcome.FAILED, "video", "upstream_error"),
    ],
)
async def test_completed_without_usable_media(
    fake: FakeFal, tmp_path: Path, outcome: Outcome, media: str, code: str
) -> None:
    fake.scenario = Scenario(outcome, media=media, size=(64, 64))
    route, body = (
        ("nano-banana/generate", {"prompt": "x"}) if media == "image" else ("veo-3.1-fast/generate", VEO)
    )
    async with harness_for(tmp_path, fal(fake)) as h:
        assert_failed(await h.run((await h.submit(route, body)).id), code)
    assert fake.created == 1 and fake.downloads == 0


async def test_rate_limit_then_success_honours_retry_after(fake: FakeFal, tmp_path: Path) -> None:
    fake.scenario.submit_errors, fake.scenario.retry_after = [429], "5"
    async with harness_for(tmp_path, fal(fake)) as h:
        ended, sleeps = await run_recording_sleeps(h, (await h.submit("veo-3.1-fast/generate", VEO)).id)
    assert_complete(ended)
    assert sleeps[0] == 5.0 and (fake.attempts, fake.created) == (2, 1)


async def test_server_errors_retried_then_persistent_failure(fake: FakeFal, tmp_path: Path) -> None:
    async with harness_for(tmp_path, fal(fake)) as h:
        fake.scenario.submit_errors, fake.scenario.poll_errors = [502], [500, 503]
        assert_complete(await h.run((await h.submit("veo-3.1-fast/generate", VEO)).id))
        fake.scenario.submit_errors = [503] * 10
        assert_failed(
            await h.run((await h.submit("veo-3.1-fast/generate", {**VEO, "prompt": "y"})).id),
            "upstream_error",
        )
    assert fake.created == 1


async def test_never_finishing_request_times_out_and_is_canceled(fake: FakeFal, tmp_path: Path) -> None:
    fake.scenario.outcome = Outcome.NEVER
    async with harness_for(tmp_path, fal(fake), config=DEADLINE) as h:
        assert_failed(await h.run((await h.submit("veo-3.1-fast/generate", VEO)).id), "timeout")
    assert fake.cancel_answers == ["CANCELLATION_REQUESTED"]


async def test_restart_resumes_the_persisted_request(fake: FakeFal, tmp_path: Path) -> None:
    fake.scenario.queued_polls = 3
    async with harness_for(tmp_path, fal(fake)) as h:
        crashed, ended = await restart_midway(h, (await h.submit("veo-3.1-fast/generate", VEO)).id)
    assert_complete(ended)
    assert crashed.upstream_id == ended.upstream_id and (fake.attempts, fake.created) == (1, 1)


async def test_cancel_drops_a_queued_request(fake: FakeFal, tmp_path: Path) -> None:
    fake.scenario.queued_polls = 10_000
    async with harness_for(tmp_path, fal(fake)) as h:
        ended = await cancel_midway(h, (await h.submit("veo-3.1-fast/generate", VEO)).id)
    assert ended.status is JobStatus.CANCELED
    assert fake.cancel_answers == ["CANCELLATION_REQUESTED"] and next(iter(fake.tasks.values())).canceled


async def test_routes_without_an_endpoint_are_not_served(fake: FakeFal, tmp_path: Path) -> None:
    async with harness_for(tmp_path, fal(fake)) as h:
        assert_failed(
            await h.run((await h.submit("sora-2/generate", {"prompt": "x"})).id), "backend_unavailable"
        )
    assert fake.attempts == 0


async def test_the_fake_queue_contract(fake: FakeFal) -> None:
    """Result before completion, the SSE status stream to COMPLETED, then the cancel answers."""
    headers = {"Authorization": f"Key {API_KEY}"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as client:
        submitted = (await client.post(f"/{VEO_APP}", json={"prompt": "x"})).json()
        early = await client.get(submitted["response_url"])
        assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})
        async with client.stream("GET", submitted["status_url"] + "/stream") as stream:
            events = [
                json.loads(line[6:]) async for line in stream.aiter_lines() if line.startswith("data: ")
            ]
        assert [e["status"] for e in events] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
        assert (await client.get(submitted["response_url"])).json()["video"]["content_type"] == "video/mp4"
        late = await client.put(submitted["cancel_url"])
        unknown = await client.put(submitted["cancel_url"].replace(submitted["request_id"], "nope"))
    assert (late.status_code, late.json()["status"]) == (400, "ALREADY_COMPLETED")
    assert (unknown.status_code, unknown.json()["status"]) == (404, "NOT_FOUND")


def test_factory_builds_it() -> None:
    backend = build_backend("fal", ProviderSettings(type="fal"))
    assert isinstance(backend, FalBackend) and backend.missing_settings() == ["api_key", "models"]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"inputs": {"veo-3.1": {"templates": "x"}}}, "templates must be a table"),
        ({"inputs": {"veo-3.1/generate": {"renames": {}}}}, "unknown keys"),
        ({"inputs": {"veo-3.1": {"integers": "duration"}}}, "integers must be a list"),
        ({"inputs": ["veo-3.1"]}, "options.inputs must be a table"),
        ({"inline_max_bytes": "big"}, "inline_max_bytes"),
    ],
)
def test_malformed_input_options_fail_at_start_up(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        FalBackend("fal", ProviderSettings(type="fal", options=options))


async def test_wrong_key_is_an_auth_failure(fake: FakeFal, tmp_path: Path) -> None:
    async with harness_for(tmp_path, fal(fake, api_key="wrong")) as h:
        assert_failed(await h.run((await h.submit("veo-3.1-fast/generate", VEO)).id), "upstream_auth")
    assert fake.attempts == 0
