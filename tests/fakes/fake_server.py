"""Plumbing of the fake upstreams for the xAI, BytePlus, DashScope, fal and Replicate adapters.

Each fake is a real HTTP server on loopback (Starlette served by uvicorn on a free port) reproducing its
provider's wire format. A per-test `Scenario` drives it: how many polls a task stays queued / running, how
it ends, which HTTP errors the first submissions or polls get. Fakes count every create request (`attempts`)
and every task they created (`created`), so a test can prove a job was submitted exactly once."""

from __future__ import annotations

import base64
import binascii
import functools
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from studio402.media.video import encode_mp4
from tests.media.samples import gradient
from tests.server import free_port, serve

API_KEY = "test-key-0123"
VIDEO_FPS = 8
VIDEO_FRAMES = 8  # one second: the geometry is what the tests check, and short clips encode fast


class Outcome(StrEnum):
    SUCCESS = "success"
    MODERATED = "moderated"  # the provider's safety refusal, in its own words
    FLAGGED = "flagged"  # media delivered but marked unsafe (fal `has_nsfw_concepts`, xAI respect_moderation)
    NO_MEDIA = "no_media"  # done / succeeded without any media
    FAILED = "failed"  # a generic failure after acceptance
    EXPIRED = "expired"  # xAI / BytePlus `expired`, Replicate `aborted`
    NEVER = "never"  # stays running forever


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ENDED = "ended"  # reached the scenario's outcome
    CANCELED = "canceled"


@dataclass
class Scenario:
    outcome: Outcome = Outcome.SUCCESS
    queued_polls: int = 1  # polls answered "queued" first
    running_polls: int = 1  # then "running", then the outcome
    submit_errors: list[int] = field(default_factory=list)  # HTTP statuses for the first create requests
    poll_errors: list[int] = field(default_factory=list)  # HTTP statuses for the first polls
    retry_after: str | None = None  # Retry-After header sent with 429 answers
    delay: float = 0.0  # seconds before answering a create request (synchronous APIs)
    media: str = "video"  # what a model host generates: "video" or "image"
    size: tuple[int, int] = (1280, 720)  # pixel size a model host generates


@dataclass
class FakeTask:
    id: str
    body: Any
    path: str = ""
    polls: int = 0
    canceled: bool = False
    deleted: bool = False
    size: tuple[int, int] = (1280, 720)

    def peek(self, scenario: Scenario) -> Phase:
        if self.canceled:
            return Phase.CANCELED
        if self.polls < scenario.queued_polls:
            return Phase.QUEUED
        if self.polls < scenario.queued_polls + scenario.running_polls or scenario.outcome is Outcome.NEVER:
            return Phase.RUNNING
        return Phase.ENDED

    def advance(self, scenario: Scenario) -> Phase:
        """The phase this poll sees; each poll moves the task one step on."""
        phase = self.peek(scenario)
        self.polls += 1
        return phase


class FakeUpstream:
    """Base of the fakes: server lifecycle, scenario, counters, tasks, and the media files it serves."""

    def __init__(self, scenario: Scenario | None = None, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.tasks: dict[str, FakeTask] = {}
        self.headers_seen: list[dict[str, str]] = []  # headers of every create request
        self._files: dict[str, tuple[bytes, str]] = {}
        self.reset(scenario)

    def reset(self, scenario: Scenario | None = None) -> None:
        """Forget every task and count from zero (a server shared by the tests of a module)."""
        self.scenario = scenario or Scenario()
        self.tasks.clear()
        self.headers_seen.clear()
        self._files.clear()
        self.attempts = 0  # create requests received, refused ones included
        self.polls = 0
        self.cancels = 0
        self.downloads = 0

    @property
    def created(self) -> int:
        return len(self.tasks)

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/files/{name}", self._file), *self.routes()])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        async with serve(self.app(), free_port(), lifespan="off", timeout_graceful_shutdown=1) as url:
            self.base_url = url
            yield url

    # -- scenario hooks ------------------------------------------------------------------------------------

    def count_attempt(self, request: Request) -> int | None:
        """Count a create request; the HTTP status the scenario wants it refused with, if any."""
        self.attempts += 1
        self.headers_seen.append(dict(request.headers))
        return self.scenario.submit_errors.pop(0) if self.scenario.submit_errors else None

    def count_poll(self) -> int | None:
        self.polls += 1
        return self.scenario.poll_errors.pop(0) if self.scenario.poll_errors else None

    def throttle_headers(self, status: int) -> dict[str, str]:
        if status == 429 and self.scenario.retry_after is not None:
            return {"Retry-After": self.scenario.retry_after}
        return {}

    def new_task(
        self, body: Any, *, prefix: str = "", size: tuple[int, int] | None = None, path: str = ""
    ) -> FakeTask:
        task = FakeTask(f"{prefix}{uuid.uuid4().hex}", body, path=path, size=size or self.scenario.size)
        self.tasks[task.id] = task
        return task

    def bearer_ok(self, request: Request, scheme: str = "Bearer") -> bool:
        return request.headers.get("authorization") == f"{scheme} {self.api_key}"

    # -- media ---------------------------------------------------------------------------------------------

    def publish(self, data: bytes, mime: str) -> str:
        name = uuid.uuid4().hex
        self._files[name] = (data, mime)
        return f"{self.base_url}/files/{name}"

    def publish_video(self, size: tuple[int, int]) -> str:
        return self.publish(mp4_bytes(*size), "video/mp4")

    def publish_image(self, size: tuple[int, int], fmt: str = "PNG") -> str:
        return self.publish(image_bytes(*size, fmt=fmt), f"image/{fmt.lower()}")

    async def _file(self, request: Request) -> Response:
        found = self._files.get(request.path_params["name"])
        if found is None:
            return Response(status_code=404)
        self.downloads += 1
        return Response(found[0], media_type=found[1])


# -- request checks shared by the fakes ------------------------------------------------------------------


def decode_data_uri(text: str) -> tuple[str, bytes] | None:
    """(mime, bytes) of a base64 data URI, None when it is not one."""
    head, sep, payload = text.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    try:
        return head[5:].split(";")[0], base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 10


def image_ref_problem(value: Any, *, allow_data: bool = True) -> str | None:
    """Why `value` is not an image reference (an http(s) URL, or a data URI of a decodable image)."""
    if is_http_url(value):
        return None
    if not isinstance(value, str):
        return "must be a string URL"
    decoded = decode_data_uri(value) if allow_data else None
    if decoded is None:
        return "must be an http(s) URL" + (" or a base64 data URI" if allow_data else "")
    try:
        Image.open(io.BytesIO(decoded[1])).verify()
    except Exception:
        return "the data URI is not a decodable image"
    return None


def image_aspect(value: str) -> float | None:
    decoded = decode_data_uri(value)
    if decoded is None:
        return None
    with Image.open(io.BytesIO(decoded[1])) as img:
        return img.width / img.height


def unknown_keys(body: dict[str, Any], allowed: Sequence[str]) -> list[str]:
    return sorted(set(body) - set(allowed))


def json_error(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


@functools.cache
def mp4_bytes(width: int, height: int) -> bytes:
    frame = np.asarray(gradient(width, height))
    frames = [np.roll(frame, i * 4, axis=1) for i in range(VIDEO_FRAMES)]
    return encode_mp4(frames, width=width, height=height, fps=VIDEO_FPS)


@functools.cache
def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    gradient(width, height).save(out, fmt)
    return out.getvalue()
