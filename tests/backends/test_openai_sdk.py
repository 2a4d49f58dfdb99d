"""The OpenAI adapters' requests, checked against the official SDK (openai, a dev dependency): for every
catalog route they serve and every enum combination the catalog accepts, the body validates against the SDK's
own parameter TypedDicts (ImageGenerateParams, ImageEditParams, VideoCreateParams); and one request per route
sent by the SDK itself (through httpx.MockTransport) carries the same fields as ours, in the same encoding
(JSON, or multipart with `image[]` parts)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx2 as httpx  # the SDK's HTTP client (a fork of httpx)
import openai
import pytest
from openai.types.image_edit_params import ImageEditParamsNonStreaming
from openai.types.image_generate_params import ImageGenerateParamsNonStreaming
from openai.types.video_create_params import VideoCreateParams

from studio402.backends import openai_images, openai_videos
from studio402.backends.base import BackendJob
from studio402.backends.openai_images import edit_parts, request_fields
from studio402.backends.openai_videos import create_fields, create_parts
from tests.backends.sdk_support import check_typed_dict, route_jobs
from tests.fakes.common import image_bytes, parse_multipart

IMAGE_ROUTES = sorted(openai_images.ROUTES)
VIDEO_ROUTES = sorted(openai_videos.ROUTES)
FILES = frozenset({"image", "input_reference"})


def test_every_served_route_is_covered() -> None:
    assert len(IMAGE_ROUTES) == 4 and len(VIDEO_ROUTES) == 2


@pytest.mark.parametrize("route", IMAGE_ROUTES)
def test_image_requests_validate_against_the_sdk_types(route: str) -> None:
    edit = route.endswith("/edit")
    params = ImageEditParamsNonStreaming if edit else ImageGenerateParamsNonStreaming
    jobs = list(route_jobs(route))
    assert jobs
    for job in jobs:
        fields = request_fields(job, job.model)
        if edit:
            fields["image"] = [m.data for m in job.inputs]
        check_typed_dict(params, fields, files=FILES)


@pytest.mark.parametrize("route", VIDEO_ROUTES)
def test_video_requests_validate_against_the_sdk_types(route: str) -> None:
    jobs = list(route_jobs(route))
    assert jobs
    for job in jobs:
        check_typed_dict(VideoCreateParams, create_fields(job, job.model), files=FILES)


Capture = list[httpx.Request]


def sdk_client(seen: Capture, answer: Callable[[httpx.Request], httpx.Response]) -> openai.AsyncOpenAI:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return openai.AsyncOpenAI(api_key="sk-test", base_url="https://api.test/v1", http_client=http)


def image_answer(request: httpx.Request) -> httpx.Response:
    data = base64.b64encode(image_bytes(16, 16)).decode()
    return httpx.Response(200, json={"created": 1, "data": [{"b64_json": data}]})


def form(request: httpx.Request) -> list[tuple[str, str | None, bytes]]:
    parts = parse_multipart(request.headers["content-type"], request.read())
    return sorted((p.name, p.content_type if p.filename else None, p.data) for p in parts)


def ours(parts: list[Any]) -> list[tuple[str, str | None, bytes]]:
    out = []
    for name, (filename, content, mime) in parts:
        data = content if isinstance(content, bytes) else str(content).encode()
        out.append((name, mime if filename else None, data))
    return sorted(out)


def one_job(route: str) -> BackendJob:
    return next(route_jobs(route))


@pytest.mark.parametrize("route", [r for r in IMAGE_ROUTES if r.endswith("/generate")])
async def test_the_sdk_sends_our_generate_body(route: str) -> None:
    job, seen = one_job(route), Capture()
    fields = request_fields(job, job.model)
    async with sdk_client(seen, image_answer) as client:
        await client.images.generate(**fields)
    assert seen[0].url.path == "/v1/images/generations"
    assert json.loads(seen[0].read()) == fields


@pytest.mark.parametrize("route", [r for r in IMAGE_ROUTES if r.endswith("/edit")])
async def test_the_sdk_sends_our_edit_form(route: str) -> None:
    job, seen = one_job(route), Capture()
    fields = request_fields(job, job.model)
    files = [(f"image_{i}.png", m.data, m.mime) for i, m in enumerate(job.inputs)]
    async with sdk_client(seen, image_answer) as client:
        await client.images.edit(**fields, image=files)
    assert seen[0].url.path == "/v1/images/edits"
    assert form(seen[0]) == ours(edit_parts(job, job.model))


@pytest.mark.parametrize("route", VIDEO_ROUTES)
async def test_the_sdk_sends_our_video_form(route: str) -> None:
    job, seen = one_job(route), Capture()
    fields = create_fields(job, job.model)

    def answer(request: httpx.Request) -> httpx.Response:
        video = {"id": "video_1", "object": "video", "status": "queued", "progress": 0, "created_at": 1}
        return httpx.Response(200, json={**video, "model": fields["model"], "seconds": fields["seconds"]})

    async with sdk_client(seen, answer) as client:
        await client.videos.create(**fields)  # type: ignore[arg-type]
    assert seen[0].url.path == "/v1/videos"
    assert form(seen[0]) == ours(await create_parts(job, job.model))
