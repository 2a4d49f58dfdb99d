"""A fake xAI API, as strict as xAI documents it: Grok Imagine images (synchronous) and video (deferred).

Every request body is checked against tests/fakes/schemas/xai.json (xAI's REST reference, the multi-image
editing guide and xai-sdk 1.21.0 types; sources in that file): unknown fields, enums, `n` 1-10, at most 3
edit sources, no `aspect_ratio` on a one-image edit, 1080p video only on grok-imagine-video-1.5, and source
images that are http(s) URLs or data URIs of real JPEG/PNG/WebP images. Refusals use xAI's shapes: a body
missing a field or of the wrong JSON type gets 422 with a plain-text reason (the reference: "missing fields
in the request body"), any other invalid argument 400 `{"code", "error"}`.

Answers: images `{data:[{b64_json|url, mime_type, respect_moderation}], block_reason, usage}`. `b64_json`
comes bare (the REST reference) or, with `data_uri_images = True`, as a `data:` URI (xAI's image guide shows
one; xai_sdk splits on `base64,`). An edit without `aspect_ratio` follows its first source's aspect ratio.
Outcome.MODERATED answers `block_reason` with no image; Outcome.FLAGGED an item with
`respect_moderation: false` and no media. Video: `{request_id}`, then `GET /v1/videos/{id}` answering HTTP
202 with an empty body while queued, `{status: pending|done|expired|failed, video:{url, respect_moderation}}`
after. Authentication and not-found errors use `{"code", "error"}`, server errors `{"error": {...}}`."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from studio402.backends.dimensions import by_area, by_short_side
from studio402.media.sniff import sniff
from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    Scenario,
    decode_data_uri,
    image_bytes,
    json_body,
    json_error,
)

SCHEMA: dict[str, Any] = json.loads((Path(__file__).parent / "schemas" / "xai.json").read_text())
LIMITS: dict[str, Any] = SCHEMA["limits"]
IMAGE_MODELS: tuple[str, ...] = tuple(SCHEMA["$defs"]["ImageModel"]["enum"])
VIDEO_MODELS: tuple[str, ...] = tuple(SCHEMA["$defs"]["VideoModel"]["enum"])
_SIDES = {"1k": 1024, "2k": 2048}
_DESERIALIZE = ("required", "type")  # serde rejects these before any argument is looked at: 422
BLOCK_REASON = "The generated image was blocked by content moderation."


@functools.cache
def validator(path: str) -> jsonschema_rs.Validator:
    """The validator of one endpoint's request body (its schema with the shared definitions)."""
    return jsonschema_rs.validator_for({**SCHEMA["requests"][path], "$defs": SCHEMA["$defs"]})


def body_problem(path: str, body: Any) -> tuple[int, str] | None:
    """(HTTP status, reason) xAI would refuse `body` with at `path`, or None if it is a valid request."""
    if not isinstance(body, dict):
        return 422, "Failed to parse the request body as JSON: expected an object"
    errors = list(validator(path).iter_errors(body))
    if errors:
        worst = next((e for e in errors if e.kind.name in _DESERIALIZE), errors[0])
        where = "/".join(str(p) for p in worst.instance_path) or "body"
        reason = f"{where}: {worst.message[:200]}"
        if worst.kind.name in _DESERIALIZE:
            return 422, f"Failed to deserialize the JSON body into the target type: {reason}"
        return 400, reason
    for where, ref in _image_refs(body):
        problem = _image_problem(ref)
        if problem:
            return 400, f"{where}: {problem}"
    return None


def _image_refs(body: dict[str, Any]) -> list[tuple[str, str]]:
    found = [("image/url", body.get("image", {}).get("url"))]
    for name in ("images", "reference_images"):
        found += [(f"{name}/{i}/url", item.get("url")) for i, item in enumerate(body.get(name, []))]
    return [(where, ref) for where, ref in found if isinstance(ref, str)]


def _image_problem(ref: str) -> str | None:
    """A data URI must hold a decodable JPEG, PNG or WebP image."""
    if not ref.startswith("data:"):
        return None
    decoded = decode_data_uri(ref)
    if decoded is None:
        return "the data URI is not valid base64"
    data = decoded[1]  # the content decides what it is, not the label
    if sniff(data) not in LIMITS["input_image_mimes"]:
        return f"unsupported image: {sniff(data) or 'unknown data'} (JPEG, PNG or WebP)"
    try:
        Image.open(io.BytesIO(data)).verify()
    except Exception:
        return "the image cannot be decoded"
    return None


def first_source_aspect(body: dict[str, Any]) -> str | None:
    """'w:h' of an edit's first source image when it is inline (a URL is not fetched here)."""
    first = body["image"] if "image" in body else body["images"][0]
    decoded = decode_data_uri(first.get("url") or "")
    if decoded is None:
        return None
    with Image.open(io.BytesIO(decoded[1])) as img:
        return f"{img.width}:{img.height}"


def invalid(message: str) -> JSONResponse:
    return json_error(400, {"code": "Client specified an invalid argument", "error": message})


class FakeXai(FakeUpstream):
    def reset(self, scenario: Scenario | None = None) -> None:
        super().reset(scenario)
        self.data_uri_images = False  # b64_json as a bare base64 string (True: a data: URI)
        self.refusals: list[tuple[int, str]] = []  # (status, reason) of every invalid request

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self._generate, methods=["POST"]),
            Route("/v1/images/edits", self._edit, methods=["POST"]),
            Route("/v1/videos/generations", self._video, methods=["POST"]),
            Route("/v1/videos/{request_id}", self._poll, methods=["GET"]),
        ]

    def _unauthorized(self) -> JSONResponse:
        return json_error(
            401,
            {
                "code": "Client specified an invalid argument",
                "error": "Incorrect API key provided: te***23. You can obtain an API key from "
                "https://console.x.ai.",
            },
        )

    def _refused(self, status: int) -> JSONResponse:
        if status == 429:
            return json_error(
                429,
                {"code": "Too many requests", "error": "Rate limit exceeded for model."},
                self.throttle_headers(status),
            )
        return json_error(
            status,
            {"error": {"message": "upstream overloaded", "type": "server_error", "code": "internal_error"}},
        )

    def _invalid(self, path: str, body: Any) -> Response | None:
        problem = body_problem(path, body)
        if problem is None:
            return None
        self.refusals.append(problem)
        status, reason = problem
        return PlainTextResponse(reason, status_code=422) if status == 422 else invalid(reason)

    async def _generate(self, request: Request) -> Response:
        return await self._image(request, "images/generations")

    async def _edit(self, request: Request) -> Response:
        return await self._image(request, "images/edits")

    async def _image(self, request: Request, path: str) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if self.scenario.delay:
            await asyncio.sleep(self.scenario.delay)
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        rejected = self._invalid(path, body)
        if rejected is not None:
            return rejected
        size = self._image_size(body, edit=path == "images/edits")
        self.new_task(body, size=size, path=path)
        outcome = self.scenario.outcome
        usage = {"cost_in_usd_ticks": 200_000_000}
        if outcome is Outcome.NO_MEDIA:
            return JSONResponse({"data": [], "usage": {"cost_in_usd_ticks": 0}})
        if outcome is Outcome.MODERATED:
            return JSONResponse({"data": [], "block_reason": BLOCK_REASON, "usage": usage})
        item = self._image_item(body, size, safe=outcome is not Outcome.FLAGGED)
        return JSONResponse({"data": [item], "block_reason": None, "usage": usage})

    def _image_size(self, body: dict[str, Any], *, edit: bool) -> tuple[int, int]:
        aspect = body.get("aspect_ratio")
        if aspect in (None, "auto"):
            aspect = (first_source_aspect(body) if edit else None) or "1:1"
        return by_area(aspect, _SIDES[body.get("resolution") or "1k"] ** 2)

    def _image_item(self, body: dict[str, Any], size: tuple[int, int], *, safe: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"revised_prompt": "", "respect_moderation": safe, "mime_type": "image/jpeg"}
        if not safe:  # a blocked image is not delivered (xai_sdk: "base64 is not available")
            return item
        if (body.get("response_format") or "url") == "b64_json":
            encoded = base64.b64encode(image_bytes(*size, fmt="JPEG")).decode()
            item["b64_json"] = f"data:image/jpeg;base64,{encoded}" if self.data_uri_images else encoded
        else:
            item["url"] = self.publish_image(size, "JPEG")
        return item

    async def _video(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        rejected = self._invalid("videos/generations", body)
        if rejected is not None:
            return rejected
        short = {"480p": 480, "720p": 720, "1080p": 1080}[body.get("resolution") or "480p"]
        task = self.new_task(body, size=by_short_side(body.get("aspect_ratio") or "16:9", short))
        return JSONResponse({"request_id": task.id})

    async def _poll(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_poll()
        if refused is not None:
            return self._refused(refused)
        task = self.tasks.get(request.path_params["request_id"])
        if task is None:
            return json_error(
                404,
                {
                    "code": "Some requested entity was not found",
                    "error": f"Video request {request.path_params['request_id']} not found",
                },
            )
        phase = task.advance(self.scenario)
        if phase is Phase.QUEUED:
            return Response(status_code=202)
        if phase is Phase.RUNNING:
            return JSONResponse({"status": "pending", "progress": 40, "model": task.body["model"]})
        return JSONResponse(self._ended(task))

    def _ended(self, task: FakeTask) -> dict[str, Any]:
        outcome, model = self.scenario.outcome, task.body["model"]
        duration = task.body.get("duration", 6)
        if outcome is Outcome.EXPIRED:
            return {"status": "expired", "model": model}
        if outcome is Outcome.FAILED:
            return {
                "status": "failed",
                "model": model,
                "error": {"code": "internal_error", "message": "Video generation failed"},
            }
        if outcome is Outcome.NO_MEDIA:
            return {"status": "done", "model": model, "progress": 100, "video": {"duration": duration}}
        safe = outcome not in (Outcome.MODERATED, Outcome.FLAGGED)
        video = {"url": self.publish_video(task.size), "duration": duration, "respect_moderation": safe}
        return {
            "status": "done",
            "model": model,
            "progress": 100,
            "video": video,
            "usage": {"cost_in_usd_ticks": duration * 500_000_000},
        }
