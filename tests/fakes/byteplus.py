"""A fake BytePlus ModelArk content-generation task API (Seedance), per providers.md §7.

`POST /api/v3/contents/generations/tasks` validates `content[]` (text, image_url / video_url / audio_url with
roles; keyframe roles never mixed with reference roles; reference counts) and the generation knobs against
tests/fakes/schemas/byteplus_seedance.json, answers `{id}`; `GET` lists tasks (the probe's read), `GET {id}`
walks queued -> running -> succeeded | failed | expired; `DELETE` cancels a queued task and deletes a finished
one (a running one is refused). Errors are `{"error": {code, message, param?, type?}}`.
Assumption of this fake (not documented): videos and audio must be http(s) URLs; only images may be data
URIs."""

from __future__ import annotations

import time
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
    image_ref_problem,
    is_http_url,
    json_body,
    json_error,
)
from tests.fakes.schema_check import issues, schema

SCHEMA = "byteplus_seedance.json"
LIMITS: dict[str, Any] = schema(SCHEMA)["x-limits"]
RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
ROLES = {
    "image_url": ("first_frame", "last_frame", "reference_image"),
    "video_url": ("reference_video",),
    "audio_url": ("reference_audio",),
}
KEYFRAME_ROLES = frozenset({"first_frame", "last_frame"})
TASKS = "/api/v3/contents/generations/tasks"


def ark_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests"}.get(
        status, "InternalError"
    )
    return json_error(
        status, {"error": {"code": code, "message": message, "param": "", "type": kind}}, headers
    )


def _item_problem(item: Any) -> tuple[str | None, str | None]:
    """(problem, role) of one content item."""
    if not isinstance(item, dict) or item.get("type") not in ("text", *ROLES):
        return "each content item needs a type: text, image_url, video_url or audio_url", None
    kind = item["type"]
    if kind == "text":
        return (None if isinstance(item.get("text"), str) and item["text"] else "text must be a string"), None
    role = item.get("role", "first_frame" if kind == "image_url" else None)
    if role not in ROLES[kind]:
        return f"role {role!r} is not valid for {kind}", None
    url = (item.get(kind) or {}).get("url") if isinstance(item.get(kind), dict) else None
    if kind == "image_url":
        problem = image_ref_problem(url)
    else:
        problem = None if is_http_url(url) else "must be an http(s) URL"
    return (f"{kind}.url {problem}" if problem else None), role


def content_problem(content: Any) -> str | None:
    if not isinstance(content, list) or not content:
        return "content must be a non-empty list"
    roles: list[str] = []
    for item in content:
        problem, role = _item_problem(item)
        if problem:
            return problem
        if role:
            roles.append(role)
    keyframes = [r for r in roles if r in KEYFRAME_ROLES]
    if keyframes and len(keyframes) != len(roles):
        return "first_frame/last_frame cannot be mixed with reference media"
    if roles.count("first_frame") > 1 or roles.count("last_frame") > 1:
        return "at most one first_frame and one last_frame"
    if "last_frame" in roles and "first_frame" not in roles:
        return "last_frame needs a first_frame"
    return None


def _param_problem(body: dict[str, Any]) -> str | None:
    found = issues(SCHEMA, body)
    if found:
        return f"{found[0].dotted or 'body'}: {found[0].message}"
    duration = body.get("duration", 5)
    if duration != -1 and duration < LIMITS["min_duration"]:
        return "duration must be -1 or an integer 4-15"
    kinds = [item["type"] for item in body["content"] if item.get("role", "").startswith("reference_")]
    for kind, most in LIMITS["max_reference"].items():
        if kinds.count(kind) > most:
            return f"at most {most} reference {kind} items"
    if "audio_url" in kinds and not {"image_url", "video_url"} & set(kinds):
        return "reference audio needs a reference image or video"
    return None


class FakeArk(FakeUpstream):
    def routes(self) -> list[BaseRoute]:
        return [
            Route(TASKS, self._create, methods=["POST"]),
            Route(TASKS, self._list, methods=["GET"]),
            Route(TASKS + "/{task_id}", self._get, methods=["GET"]),
            Route(TASKS + "/{task_id}", self._delete, methods=["DELETE"]),
        ]

    def _refused(self, status: int) -> JSONResponse:
        if status == 429:
            return ark_error(
                429,
                "RateLimitExceeded.EndpointRPMExceeded",
                "Too many requests, please retry later",
                self.throttle_headers(status),
            )
        return ark_error(
            status, "InternalServiceError", "The service encountered an unexpected internal error."
        )

    def _unauthorized(self) -> JSONResponse:
        return ark_error(401, "AuthenticationError", "The API key in the request is missing or invalid.")

    async def _create(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        if not isinstance(body, dict):
            return ark_error(400, "InvalidParameter", "the body must be a JSON object")
        if body.get("model") not in schema(SCHEMA)["properties"]["model"]["enum"]:
            return ark_error(
                404,
                "InvalidEndpointOrModel.NotFound",
                f"The model or endpoint {body.get('model')} does not exist or you do not have access.",
            )
        body = {k: v for k, v in body.items() if v is not None}  # the SDK posts the unset ones as null
        problem = content_problem(body.get("content")) or _param_problem(body)
        if problem:
            return ark_error(400, "InvalidParameter", f"The parameter is invalid: {problem}")
        if self.scenario.outcome is Outcome.MODERATED and "forbidden" in str(body["content"]):
            return ark_error(
                400,
                "InputTextSensitiveContentDetected",
                "The request failed because the input text may contain sensitive information.",
            )
        ratio = body.get("ratio", "16:9")
        size = by_short_side(
            "16:9" if ratio == "adaptive" else ratio, RESOLUTIONS[body.get("resolution", "720p")]
        )
        task = self.new_task(body, prefix="cgt-", size=size)
        return JSONResponse({"id": task.id})

    async def _list(self, request: Request) -> Response:
        """GET the task list (the SDK's `content_generation.tasks.list`): the probe's cheap read."""
        if not self.bearer_ok(request):
            return self._unauthorized()
        return JSONResponse({"items": [], "total": 0})

    def _task(self, request: Request) -> FakeTask | None:
        task = self.tasks.get(request.path_params["task_id"])
        return None if task is None or task.deleted else task

    async def _get(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_poll()
        if refused is not None:
            return self._refused(refused)
        task = self._task(request)
        if task is None:
            return ark_error(404, "ResourceNotFound", "The specified task does not exist.")
        phase = task.advance(self.scenario)
        return JSONResponse({**self._common(task), **self._state(task, phase)})

    def _common(self, task: FakeTask) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": task.id,
            "model": task.body["model"],
            "created_at": now - 5,
            "updated_at": now,
            "seed": task.body.get("seed", 42),
            "ratio": task.body.get("ratio", "16:9"),
            "resolution": task.body.get("resolution", "720p"),
            "duration": task.body.get("duration", 5),
            "framespersecond": 24,
            "service_tier": "default",
            "execution_expires_after": 172800,
        }

    def _state(self, task: FakeTask, phase: Phase) -> dict[str, Any]:
        if phase is Phase.CANCELED:
            return {"status": "cancelled"}
        if phase is not Phase.ENDED:
            return {"status": phase.value}
        outcome = self.scenario.outcome
        if outcome is Outcome.SUCCESS:
            return {
                "status": "succeeded",
                "content": {"video_url": self.publish_video(task.size)},
                "usage": {"completion_tokens": 108900, "total_tokens": 108900},
            }
        if outcome is Outcome.NO_MEDIA:
            return {"status": "succeeded", "content": {}, "usage": {"completion_tokens": 0}}
        if outcome is Outcome.EXPIRED:
            return {"status": "expired"}
        if outcome is Outcome.MODERATED:
            return {
                "status": "failed",
                "error": {
                    "code": "OutputVideoSensitiveContentDetected",
                    "message": "The request failed because the output video may contain sensitive "
                    "information.",
                },
            }
        return {"status": "failed", "error": {"code": "InternalServiceError", "message": "generation failed"}}

    async def _delete(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        self.cancels += 1
        task = self._task(request)
        if task is None:
            return ark_error(404, "ResourceNotFound", "The specified task does not exist.")
        phase = task.peek(self.scenario)
        if phase is Phase.RUNNING:
            return ark_error(400, "InvalidParameter", "A running task cannot be cancelled.")
        if phase is Phase.QUEUED:
            task.canceled = True
        else:
            task.deleted = True  # a finished task's record is deleted
        return JSONResponse({})
