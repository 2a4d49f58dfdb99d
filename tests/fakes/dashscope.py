"""A fake DashScope (Alibaba Model Studio) video-synthesis task API for Wan 2.6, per providers.md §8.

Create requires `X-DashScope-Async: enable` (without it: 403 AccessDenied, as the real service answers
synchronous calls to an async-only model) and validates the legacy-protocol body; `GET /api/v1/tasks/{id}`
walks PENDING -> RUNNING -> SUCCEEDED | FAILED and answers `UNKNOWN` with HTTP 200 for ids it never issued;
`POST /api/v1/tasks/{id}/cancel` works on PENDING tasks only. Errors are `{request_id, code, message}`.
Output geometry: t2v from `size`; i2v keeps the first frame's aspect ratio at the `resolution` tier."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from studio402.backends.dimensions import by_short_side
from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    image_aspect,
    image_ref_problem,
    is_http_url,
    json_body,
    json_error,
    unknown_keys,
)

SYNTHESIS = "/api/v1/services/aigc/video-generation/video-synthesis"
T2V_MODELS = ("wan2.6-t2v", "wan2.6-t2v-us")
I2V_MODELS = ("wan2.6-i2v", "wan2.6-i2v-flash", "wan2.6-i2v-us")
SIZES = (
    "1280*720",
    "720*1280",
    "960*960",
    "1088*832",
    "832*1088",
    "1920*1080",
    "1080*1920",
    "1440*1440",
    "1632*1248",
    "1248*1632",
)
INPUT_FIELDS = ("prompt", "negative_prompt", "img_url", "audio_url")
PARAMETER_FIELDS = (
    "size",
    "resolution",
    "duration",
    "prompt_extend",
    "shot_type",
    "audio",
    "watermark",
    "seed",
)
TIERS = {"720P": 720, "1080P": 1080}


def ds_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return json_error(status, {"request_id": str(uuid.uuid4()), "code": code, "message": message}, headers)


def _input_problem(model: str, inputs: Any) -> str | None:
    if not isinstance(inputs, dict):
        return "input must be an object"
    extra = unknown_keys(inputs, INPUT_FIELDS)
    if extra:
        return f"unknown input fields: {extra}"
    if model in T2V_MODELS and not (isinstance(inputs.get("prompt"), str) and inputs["prompt"].strip()):
        return "input.prompt is required"
    if model in T2V_MODELS and "img_url" in inputs:
        return "img_url is not supported by text-to-video models"
    if model in I2V_MODELS:
        problem = image_ref_problem(inputs.get("img_url"))
        if problem:
            return f"input.img_url {problem}"
    if "audio_url" in inputs and not is_http_url(inputs["audio_url"]):
        return "input.audio_url must be an http(s) URL"
    return None


def _parameters_problem(model: str, params: Any) -> str | None:
    if not isinstance(params, dict):
        return "parameters must be an object"
    duration, seed = params.get("duration", 5), params.get("seed", 0)
    checks = [
        (
            not unknown_keys(params, PARAMETER_FIELDS),
            f"unknown parameters: {unknown_keys(params, PARAMETER_FIELDS)}",
        ),
        (type(duration) is int and 2 <= duration <= 15, "duration must be an integer 2-15"),
        (type(seed) is int and 0 <= seed <= 2_147_483_647, "seed must be in [0, 2147483647]"),
        (params.get("shot_type", "single") in ("single", "multi"), "shot_type must be single or multi"),
        (
            all(isinstance(params.get(k, True), bool) for k in ("prompt_extend", "watermark", "audio")),
            "prompt_extend / watermark / audio must be booleans",
        ),
    ]
    if model in T2V_MODELS:
        checks.append(
            (
                params.get("size", "1280*720") in SIZES and "resolution" not in params,
                "t2v takes `size` (e.g. 1280*720), not `resolution`",
            )
        )
    else:
        checks.append(
            (
                params.get("resolution", "720P") in TIERS and "size" not in params,
                "i2v takes `resolution` 720P|1080P, not `size`",
            )
        )
    return next((message for ok, message in checks if not ok), None)


def body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    model = body.get("model")
    if model not in T2V_MODELS + I2V_MODELS:
        return f"Model not exist: {model}"
    return _input_problem(model, body.get("input")) or _parameters_problem(model, body.get("parameters", {}))


def output_size(body: dict[str, Any]) -> tuple[int, int]:
    params = body.get("parameters", {})
    if body["model"] in T2V_MODELS:
        w, h = str(params.get("size", "1280*720")).split("*")
        return int(w), int(h)
    aspect = image_aspect(body["input"]["img_url"]) or 16 / 9
    short = TIERS[params.get("resolution", "720P")]
    return by_short_side(f"{aspect}:1", short)


class FakeDashScope(FakeUpstream):
    def routes(self) -> list[BaseRoute]:
        return [
            Route(SYNTHESIS, self._create, methods=["POST"]),
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
