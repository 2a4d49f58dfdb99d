"""A fake xAI API: Grok Imagine images (synchronous) and video (deferred, polled by request id).

Wire format per providers.md §6: `Authorization: Bearer`, JSON bodies, `{data:[{b64_json|url,
respect_moderation}]}` for images, `{request_id}` then `GET /v1/videos/{id}` answering HTTP 202 with an empty
body while queued, `{status: pending|done|expired|failed, video:{url, respect_moderation}}` after.
Errors use both documented shapes: `{"code", "error"}` (auth, not found) and `{"error": {...}}`."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from studio402.backends.dimensions import by_area, by_short_side
from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    image_bytes,
    image_ref_problem,
    json_body,
    json_error,
    unknown_keys,
)

IMAGE_MODELS = ("grok-imagine-image", "grok-imagine-image-quality", "grok-imagine-image-2.0")
VIDEO_MODELS = ("grok-imagine-video", "grok-imagine-video-1.5")
IMAGE_ASPECTS = (
    "1:1",
    "3:4",
    "4:3",
    "9:16",
    "16:9",
    "2:3",
    "3:2",
    "9:19.5",
    "19.5:9",
    "9:20",
    "20:9",
    "1:2",
    "2:1",
)
VIDEO_ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
IMAGE_FIELDS = ("model", "prompt", "n", "response_format", "aspect_ratio", "resolution", "quality", "user")
VIDEO_FIELDS = (
    "model",
    "prompt",
    "duration",
    "aspect_ratio",
    "resolution",
    "image",
    "reference_images",
    "user",
)
_SIDES = {"1k": 1024, "2k": 2048}


def invalid(message: str, status: int = 400) -> JSONResponse:
    return json_error(
        status,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_argument",
            }
        },
    )


def _image_problem(body: Any, edit: bool) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    allowed = IMAGE_FIELDS + (("image", "images") if edit else ())
    extra = unknown_keys(body, allowed)
    if extra:
        return f"unknown fields: {extra}"
    checks = [
        (isinstance(body.get("prompt"), str) and body["prompt"].strip() != "", "prompt is required"),
        (body.get("model") in IMAGE_MODELS, f"model must be one of {IMAGE_MODELS}"),
        (isinstance(body.get("n", 1), int) and 1 <= body.get("n", 1) <= 10, "n must be 1-10"),
        (
            body.get("response_format", "url") in ("url", "b64_json"),
            "response_format must be url or b64_json",
        ),
        (body.get("aspect_ratio", "1:1") in IMAGE_ASPECTS, "unsupported aspect_ratio"),
        (body.get("resolution", "1k") in _SIDES, "resolution must be 1k or 2k"),
    ]
    problem = next((message for ok, message in checks if not ok), None)
    return problem or (_edit_images_problem(body) if edit else None)


def _edit_images_problem(body: dict[str, Any]) -> str | None:
    images = [body["image"]] if "image" in body else body.get("images")
    if not isinstance(images, list) or not images:
        return "edits need `image` or `images`"
    for item in images:
        if not isinstance(item, dict):
            return "each image is an object {url, type}"
        problem = image_ref_problem(item.get("url"))
        if problem:
            return f"image.url {problem}"
    return None


def _video_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    extra = unknown_keys(body, VIDEO_FIELDS)
    duration = body.get("duration", 6)
    checks = [
        (not extra, f"unknown fields: {extra}"),
        (isinstance(body.get("prompt"), str) and body["prompt"].strip() != "", "prompt is required"),
        (body.get("model") in VIDEO_MODELS, f"model must be one of {VIDEO_MODELS}"),
        (
            isinstance(duration, int) and not isinstance(duration, bool) and 1 <= duration <= 15,
            "duration must be an integer 1-15",
        ),
        (body.get("aspect_ratio", "16:9") in VIDEO_ASPECTS, "unsupported aspect_ratio"),
        (body.get("resolution", "480p") in ("480p", "720p"), "resolution must be 480p or 720p"),
    ]
    problem = next((message for ok, message in checks if not ok), None)
    if problem is not None or "image" not in body:
        return problem
    image = body["image"]
    if not isinstance(image, dict):
        return "image must be an object {url}"
    url_problem = image_ref_problem(image.get("url"))
    return f"image.url {url_problem}" if url_problem else None


class FakeXai(FakeUpstream):
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

    async def _generate(self, request: Request) -> Response:
        return await self._image(request, edit=False)

    async def _edit(self, request: Request) -> Response:
        return await self._image(request, edit=True)

    async def _image(self, request: Request, *, edit: bool) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if self.scenario.delay:
            await asyncio.sleep(self.scenario.delay)
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        problem = _image_problem(body, edit)
        if problem:
            return invalid(problem)
        size = by_area(body.get("aspect_ratio", "1:1"), _SIDES[body.get("resolution", "1k")] ** 2)
        self.new_task(body, size=size)
        outcome = self.scenario.outcome
        if outcome is Outcome.NO_MEDIA:
            return JSONResponse({"data": [], "usage": {"cost_in_usd_ticks": 0}})
        item = self._image_item(body, size, safe=outcome is not Outcome.FLAGGED)
        return JSONResponse({"data": [item], "usage": {"cost_in_usd_ticks": 200_000_000}})

    def _image_item(self, body: dict[str, Any], size: tuple[int, int], *, safe: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "revised_prompt": f"A detailed image of {body['prompt']}",
            "respect_moderation": safe,
        }
        if body.get("response_format", "url") == "b64_json":
            item["b64_json"] = base64.b64encode(image_bytes(*size, fmt="JPEG")).decode()
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
        problem = _video_problem(body)
        if problem:
            return invalid(problem)
        short = 720 if body.get("resolution") == "720p" else 480
        task = self.new_task(body, size=by_short_side(body.get("aspect_ratio", "16:9"), short))
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
