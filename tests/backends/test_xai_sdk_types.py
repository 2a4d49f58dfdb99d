"""Every request the xAI adapter builds, for every catalog route it serves, checked against xAI's own SDK.

The bodies are captured without network (httpx.MockTransport) for every enum combination of each route's
catalog schema, edits with 1, 2 and 3 sources, and video with and without a first frame. Each REST body is
mapped field by field onto the parameters of xai-sdk's methods (`image.sample_batch`, `video.prepare`): a
field with no SDK parameter fails, every value is validated strictly against that parameter's annotation
(Literal aspect ratios, resolutions, formats) and the model against the SDK's model Literals, and the SDK
then builds its request proto from them. The bodies also pass the fake's bundled REST schema."""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import xai_sdk  # type: ignore[import-untyped]
from pydantic import TypeAdapter
from xai_sdk.sync.image import Client as ImageClient  # type: ignore[import-untyped]
from xai_sdk.sync.video import Client as VideoClient  # type: ignore[import-untyped]
from xai_sdk.types import ImageGenerationModel, VideoGenerationModel  # type: ignore[import-untyped]

from studio402.backends.base import Ask, BackendJob, MediaInput
from studio402.backends.dimensions import by_area
from studio402.backends.xai import DEFAULT_BASE, XaiBackend
from studio402.catalog import CATALOG, Route
from tests.backends.upstream_support import png_input, provider
from tests.catalog_samples import enum_combinations
from tests.fakes.fake_server import image_bytes
from tests.fakes.xai import body_problem

ROUTES = ("grok/generate", "grok/edit", "grok-video/generate")
IMAGE_PARAMS = typing.get_type_hints(ImageClient.sample_batch)
VIDEO_PARAMS = typing.get_type_hints(VideoClient.prepare)
PNG_B64 = base64.b64encode(image_bytes(16, 16)).decode()
Captured = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def sdk() -> Iterator[Any]:
    client = xai_sdk.Client(api_key="xai-test")  # builds requests offline; nothing is sent
    yield client
    client.close()


@pytest.fixture
async def capturing() -> AsyncIterator[tuple[XaiBackend, Captured]]:
    """The adapter with its HTTP client answered in memory: every request body it sends is recorded."""
    captured: Captured = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1/")
        captured.append((path, json.loads(request.content)))
        if path == "videos/generations":
            return httpx.Response(200, json={"request_id": "req-1"})
        return httpx.Response(200, json={"data": [{"b64_json": PNG_B64, "mime_type": "image/png"}]})

    backend = XaiBackend("xai", provider("xai", DEFAULT_BASE))
    await backend._client.aclose()
    backend._client = httpx.AsyncClient(base_url=DEFAULT_BASE, transport=httpx.MockTransport(answer))
    yield backend, captured
    await backend.aclose()


def sources(field: str, count: int, aspect: str) -> list[MediaInput]:
    """PNG sources shaped like `aspect` (a one-image edit keeps its source's ratio)."""
    size = by_area(aspect, 128 * 128, step=1)
    if field == "image":
        return [png_input(("image",), size)]
    return [png_input((field, i), size) for i in range(count)]


def jobs(route: Route) -> Iterator[BackendJob]:
    """A job per enum combination of the route's schema; per source count where the route takes media."""
    media = next(iter(route.input.MEDIA), None)
    counts = {"images": (1, 2, 3), "image": (0, 1)}.get(media or "", (0,))
    for body in enum_combinations(route):
        for count in counts:
            inputs = sources(media, count, str(body.get("aspect_ratio", "1:1"))) if media and count else []
            if media == "images":
                body = {**body, "images": [f"https://x.example/{i}.png" for i in range(count)]}
            elif media == "image" and count:
                body = {**body, "image": "https://x.example/first.png"}
            canonical = CATALOG.validate(route, body).canonical
            yield BackendJob("job-1", route.model, route.operation, canonical, inputs)


def source_url(item: Any) -> str:
    """An ImageUrl object of the REST API: the SDK takes its `url` (`type` is always "image_url")."""
    assert isinstance(item, dict) and set(item) <= {"url", "type"}, item
    assert item.get("type", "image_url") == "image_url"
    url: str = item["url"]
    return url


def image_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """The `image.sample_batch` arguments a REST images body means; a field the SDK lacks fails."""
    rest = dict(body)
    kwargs = {"prompt": rest.pop("prompt"), "model": rest.pop("model"), "n": rest.pop("n", 1)}
    kwargs["image_format"] = {"b64_json": "base64", "url": "url"}[rest.pop("response_format", "url")]
    for name in ("aspect_ratio", "resolution", "quality", "user"):
        if name in rest:
            kwargs[name] = rest.pop(name)
    if "image" in rest:
        kwargs["image_url"] = source_url(rest.pop("image"))
    if "images" in rest:
        kwargs["image_urls"] = [source_url(item) for item in rest.pop("images")]
    assert not rest, f"no xai_sdk parameter for {sorted(rest)}"
    return kwargs


def video_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """The `video.prepare` arguments a REST video body means; a field the SDK lacks fails."""
    rest = dict(body)
    kwargs = {"prompt": rest.pop("prompt"), "model": rest.pop("model")}
    for name in ("duration", "aspect_ratio", "resolution", "user"):
        if name in rest:
            kwargs[name] = rest.pop(name)
    if "image" in rest:
        kwargs["image_url"] = source_url(rest.pop("image"))
    assert not rest, f"no xai_sdk parameter for {sorted(rest)}"
    return kwargs


def check_types(kwargs: dict[str, Any], hints: dict[str, Any], model_type: Any) -> None:
    for name, value in kwargs.items():
        assert name in hints, f"xai_sdk has no parameter {name}"
        TypeAdapter(hints[name]).validate_python(value, strict=True)
    TypeAdapter(model_type).validate_python(kwargs["model"], strict=True)


def check_image(sdk: Any, body: dict[str, Any]) -> None:
    kwargs = image_kwargs(body)
    check_types(kwargs, IMAGE_PARAMS, ImageGenerationModel)
    n = kwargs.pop("n")
    proto = sdk.image.prepare(**kwargs).image_request
    assert (proto.n, proto.HasField("aspect_ratio")) == (n, "aspect_ratio" in body)
    assert (proto.HasField("image"), len(proto.images)) == ("image" in body, len(body.get("images", [])))


def check_video(sdk: Any, body: dict[str, Any]) -> None:
    kwargs = video_kwargs(body)
    check_types(kwargs, VIDEO_PARAMS, VideoGenerationModel)
    proto = sdk.video.prepare(**kwargs).video_request
    assert (proto.duration, proto.HasField("image")) == (body["duration"], "image" in body)


CHECKS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "images/generations": check_image,
    "images/edits": check_image,
    "videos/generations": check_video,
}


def test_the_adapter_serves_exactly_the_grok_routes() -> None:
    backend = XaiBackend("xai", provider("xai", DEFAULT_BASE))
    assert tuple(r.key for r in CATALOG if backend.supports(r.key)) == ROUTES


@pytest.mark.parametrize("route_key", ROUTES)
async def test_every_request_matches_the_sdk_types(
    route_key: str, sdk: Any, capturing: tuple[XaiBackend, Captured]
) -> None:
    backend, captured = capturing
    count = 0
    for job in jobs(CATALOG.get(*route_key.split("/"))):
        assert backend.refusal(Ask.of_job(job)) is None, job.params
        await backend.submit(job)
        path, body = captured.pop()
        assert body_problem(path, body) is None, (path, body_problem(path, body))
        CHECKS[path](sdk, body)
        count += 1
    assert count >= 13 and not captured
