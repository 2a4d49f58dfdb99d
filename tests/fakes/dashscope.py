"""A fake DashScope (Alibaba Model Studio) video-synthesis task API for Wan 2.6, per providers.md §8.

Create requires `X-DashScope-Async: enable` (without it: 403 AccessDenied, as the real service answers
synchronous calls to an async-only model) and validates the legacy-protocol body against
tests/fakes/schemas/dashscope_wan26.json and its limits (first frame: format, 360-2000 px, 10 MB). Prompts
over the model's limit are cut as the real service does (silently: `truncated` records them);
`GET /api/v1/tasks` lists tasks (the probe's read); `GET /api/v1/tasks/{id}` walks PENDING -> RUNNING ->
SUCCEEDED | FAILED and answers `UNKNOWN` with HTTP 200 for ids it never issued;
`POST /api/v1/tasks/{id}/cancel` works on PENDING tasks only. Errors are `{request_id, code, message}`.
Output geometry: t2v from `size`; i2v keeps the first frame's aspect ratio at the `resolution` tier."""

from __future__ import annotations

import io
import uuid
from typing import Any

from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from studio402.backends.dimensions import by_short_side
from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    Scenario,
    decode_data_uri,
    image_aspect,
    image_ref_problem,
    is_http_url,
    json_body,
    json_error,
)
from tests.fakes.schema_check import issues, schema

SYNTHESIS = "/api/v1/services/aigc/video-generation/video-synthesis"
SCHEMA = "dashscope_wan26.json"
T2V_MODELS: tuple[str, ...] = tuple(schema(SCHEMA)["x-t2v-models"])
LIMITS: dict[str, Any] = schema(SCHEMA)["x-limits"]
TIERS = {"720P": 720, "1080P": 1080}


def ds_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return json_error(status, {"request_id": str(uuid.uuid4()), "code": code, "message": message}, headers)


def prompt_limit(model: str) -> int:
    limits: dict[str, int] = LIMITS["prompt_chars"]
    return next((n for family, n in limits.items() if model.startswith(family)), limits["default"])


def image_dims(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def frame_problem(value: str) -> str | None:
    """Why a first frame is refused (format, 360-2000 px per side, 10 MB); URLs are not fetched here."""
    if is_http_url(value):
        return None
    decoded = decode_data_uri(value)
    if decoded is None:
        return "img_url must be an http(s) URL or a base64 data URI"
    problem = image_ref_problem(value)
    if problem:
        return f"img_url {problem}"
    mime, data = decoded
    width, height = image_dims(data)
    if mime not in LIMITS["frame_mimes"] or len(data) > LIMITS["frame_max_bytes"]:
        return "img_url must be a JPEG, PNG, BMP or WEBP image of at most 10 MB"
    if min(width, height) < LIMITS["frame_min_side"] or max(width, height) > LIMITS["frame_max_side"]:
        return f"img_url is {width}x{height}: width and height must be within [360, 2000] pixels"
    return None


def body_problem(body: Any) -> str | None:
    found = issues(SCHEMA, body)
    if found:
        return f"{found[0].dotted or 'body'}: {found[0].message}"
    model, inputs, params = body["model"], body["input"], body.get("parameters", {})
    t2v = model in T2V_MODELS
    if t2v and not str(inputs.get("prompt", "")).strip():
        return "input.prompt is required"
    if t2v and "img_url" in inputs:
        return "img_url is not supported by text-to-video models"
    if not t2v and "img_url" not in inputs:
        return "input.img_url is required"
    if t2v and "resolution" in params:
        return "t2v takes `size` (e.g. 1280*720), not `resolution`"
    if not t2v and "size" in params:
        return "i2v takes `resolution` 720P|1080P, not `size`"
    return frame_problem(inputs["img_url"]) if "img_url" in inputs else None


def output_size(body: dict[str, Any]) -> tuple[int, int]:
    params = body.get("parameters", {})
    if body["model"] in T2V_MODELS:
        w, h = str(params.get("size", "1280*720")).split("*")
        return int(w), int(h)
    aspect = image_aspect(body["input"]["img_url"]) or 16 / 9
    short = TIERS[params.get("resolution", "720P")]
    return by_short_side(f"{aspect}:1", short)


class FakeDashScope(FakeUpstream):
    def reset(self, scenario: Scenario | None = None) -> None:
        super().reset(scenario)
        self.truncated: list[str] = []  # fields the real service would have cut short

    def routes(self) -> list[BaseRoute]:
        return [
            Route(SYNTHESIS, self._create, methods=["POST"]),
            Route("/api/v1/tasks", self._list, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}", self._get, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}/cancel", self._cancel, methods=["POST"]),
        ]

    def _refused(self, status: int) -> JSONResponse:
        if status == 429:
            return ds_error(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                self.throttle_headers(status),
            )
        return ds_error(status, "InternalError", "An internal error has occured, please try again later.")

    def _unauthorized(self) -> JSONResponse:
        return ds_error(401, "InvalidApiKey", "Invalid API-key provided.")

    def _cut_prompts(self, body: dict[str, Any]) -> None:
        """The real service takes a prompt over its limit and silently generates from its beginning."""
        inputs = body["input"]
        for field, limit in (
            ("prompt", prompt_limit(body["model"])),
            ("negative_prompt", LIMITS["negative_prompt_chars"]),
        ):
            if len(inputs.get(field, "")) > limit:
                self.truncated.append(field)
                inputs[field] = inputs[field][:limit]

    async def _list(self, request: Request) -> Response:
        """GET /tasks (the SDK's `VideoSynthesis.list`): the probe's cheap authenticated read."""
        if not self.bearer_ok(request):
            return self._unauthorized()
        size = int(request.query_params.get("page_size", "10"))
        return JSONResponse(
            {"request_id": str(uuid.uuid4()), "data": [], "total": 0, "page_no": 1, "page_size": size}
        )

    async def _create(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if refused is not None:
            return self._refused(refused)
        if request.headers.get("x-dashscope-async") != "enable":
            return ds_error(403, "AccessDenied", "current user api does not support synchronous calls")
        body = await json_body(request)
        problem = body_problem(body)
        if problem:
            return ds_error(400, "InvalidParameter", problem)
        if self.scenario.outcome is Outcome.MODERATED and "forbidden" in body["input"].get("prompt", ""):
            return ds_error(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
        self._cut_prompts(body)
        task = self.new_task(body, size=output_size(body))
        return JSONResponse(
            {"request_id": str(uuid.uuid4()), "output": {"task_id": task.id, "task_status": "PENDING"}}
        )

    async def _get(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_poll()
        if refused is not None:
            return self._refused(refused)
        task_id = request.path_params["task_id"]
        task = self.tasks.get(task_id)
        if task is None:  # DashScope answers unknown ids with HTTP 200 and status UNKNOWN
            return JSONResponse(
                {"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            )
        output = {"task_id": task.id, "submit_time": "2026-11-21 10:00:00.000"}
        output.update(self._state(task, task.advance(self.scenario)))
        body: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": output}
        if output["task_status"] == "SUCCEEDED":
            body["usage"] = {
                "duration": task.body.get("parameters", {}).get("duration", 5),
                "video_count": 1,
                "SR": min(task.size),
            }
        return JSONResponse(body)

    def _state(self, task: FakeTask, phase: Phase) -> dict[str, Any]:
        if phase is Phase.CANCELED:
            return {"task_status": "CANCELED"}
        if phase is Phase.QUEUED:
            return {"task_status": "PENDING"}
        if phase is Phase.RUNNING:
            return {"task_status": "RUNNING", "scheduled_time": "2026-11-21 10:00:01.000"}
        outcome, prompt = self.scenario.outcome, task.body["input"].get("prompt", "")
        done = {"scheduled_time": "2026-11-21 10:00:01.000", "end_time": "2026-11-21 10:02:00.000"}
        if outcome is Outcome.SUCCESS:
            return {
                "task_status": "SUCCEEDED",
                "video_url": self.publish_video(task.size),
                "orig_prompt": prompt,
                "actual_prompt": f"{prompt}, cinematic",
                **done,
            }
        if outcome is Outcome.NO_MEDIA:
            return {"task_status": "SUCCEEDED", "orig_prompt": prompt, **done}
        if outcome is Outcome.MODERATED:
            return {
                "task_status": "FAILED",
                "code": "DataInspectionFailed",
                "message": "Output data may contain inappropriate content.",
                **done,
            }
        return {
            "task_status": "FAILED",
            "code": "InternalError.Algo",
            "message": "Algorithm process error.",
            **done,
        }

    async def _cancel(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        self.cancels += 1
        task = self.tasks.get(request.path_params["task_id"])
        if task is None or task.peek(self.scenario) is not Phase.QUEUED:
            return ds_error(
                400,
                "UnsupportedOperation",
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
            )
        task.canceled = True
        return JSONResponse({"request_id": str(uuid.uuid4())})
