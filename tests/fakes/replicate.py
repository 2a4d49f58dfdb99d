"""A fake Replicate predictions API (api.replicate.com/v1), per providers.md §9b.

Creates through `/v1/models/{owner}/{name}/predictions`, `/v1/predictions` (version) and
`/v1/deployments/{owner}/{name}/predictions` answer 201 with a prediction object; `GET /v1/predictions/{id}`
walks starting -> processing (tqdm-style logs) -> succeeded | failed | aborted; cancel answers the canceled
prediction. Errors are RFC 7807 `{title, detail, status}`; a 429 says "Your rate limit resets in ~Ns" in its
detail (a Retry-After header only when the scenario sets one). `Prefer` headers are recorded (the adapter
must never ask for the synchronous mode)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    Scenario,
    decode_data_uri,
    image_ref_problem,
    is_http_url,
    json_body,
    json_error,
)

VERSION = re.compile(r"^([\w.-]+/[\w.-]+:)?[0-9a-f]{64}$")
THROTTLE_SECONDS = 30


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return json_error(status, {"title": title, "detail": detail, "status": status, **extra}, headers)


def _value_problem(key: str, value: Any) -> str | None:
    if isinstance(value, list):
        return next((p for p in (_value_problem(key, v) for v in value) if p), None)
    if not isinstance(value, str) or not value.startswith(("data:", "http")):
        return None
    if "image" in key or key in ("last_frame", "first_frame"):
        return image_ref_problem(value)
    return None if is_http_url(value) or decode_data_uri(value) else "is not a valid URL or data URI"


def input_problem(body: Any, allowed: Sequence[str] | None) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return "- input: is required and must be an object"
    inputs = body["input"]
    if not isinstance(inputs.get("prompt"), str):
        return "- input.prompt: Invalid type. Expected: string"
    for key, value in inputs.items():
        if allowed is not None and key not in allowed:
            return f"- input: Additional property {key} is not allowed"
        found = _value_problem(key, value)
        if found:
            return f"- input.{key}: {found}"
    return None


class FakeReplicate(FakeUpstream):
    def __init__(self, scenario: Scenario | None = None, *, allowed: Sequence[str] | None = None) -> None:
        self.allowed = allowed  # accepted input fields of the model (others: 422)
        self.prefer_headers: list[str] = []
        self.versions: dict[str, str | None] = {}
        super().__init__(scenario)

    def reset(self, scenario: Scenario | None = None) -> None:
        super().reset(scenario)
        self.prefer_headers.clear()
        self.versions.clear()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self._create_model, methods=["POST"]),
            Route("/v1/deployments/{owner}/{name}/predictions", self._create_model, methods=["POST"]),
            Route("/v1/predictions", self._create_version, methods=["POST"]),
            Route("/v1/predictions/{id}", self._get, methods=["GET"]),
            Route("/v1/predictions/{id}/cancel", self._cancel, methods=["POST"]),
        ]

    def _unauthorized(self) -> JSONResponse:
        return problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    def _refused(self, status: int) -> JSONResponse:
        if status == 429:
            return problem(
                429,
                "Request was throttled",
                f"Request was throttled. Your rate limit resets in ~{THROTTLE_SECONDS}s.",
                self.throttle_headers(status),
            )
        return problem(status, "Internal Server Error", "Something went wrong on our end.")

    async def _create_model(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await self._create(request, model, None)

    async def _create_version(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        body = await json_body(request)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not VERSION.match(version):
            self.count_attempt(request)
            return problem(422, "Invalid version or not permitted", "The specified version does not exist")
        model, _, version_id = version.rpartition(":")
        return await self._create(request, model or "owner/versioned", version_id)

    async def _create(self, request: Request, model: str, version: str | None) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if "prefer" in request.headers:
            self.prefer_headers.append(request.headers["prefer"])
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        found = input_problem(body, self.allowed)
        if found:
            return problem(422, "Input validation failed", found)
        task = self.new_task(body, path=model)
        self.versions[task.id] = version
        return JSONResponse(self._prediction(task, "starting"), status_code=201)

    def _prediction(self, task: FakeTask, status: str, **fields: Any) -> dict[str, Any]:
        url = f"{self.base_url}/v1/predictions/{task.id}"
        return {
            "id": task.id,
            "model": task.path,
            "version": self.versions[task.id] or "f" * 64,
            "input": task.body["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": status,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "urls": {
                "get": url,
                "cancel": f"{url}/cancel",
                "stream": f"{url}/stream",
                "web": f"https://replicate.com/p/{task.id}",
            },
            **fields,
        }

    async def _get(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_poll()
        if refused is not None:
            return self._refused(refused)
        task = self.tasks.get(request.path_params["id"])
        if task is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        return JSONResponse(self._state(task, task.advance(self.scenario)))

    def _state(self, task: FakeTask, phase: Phase) -> dict[str, Any]:
        if phase is Phase.CANCELED:
            return self._prediction(task, "canceled")
        if phase is Phase.QUEUED:
            return self._prediction(task, "starting")
        if phase is Phase.RUNNING:
            return self._prediction(task, "processing", logs=" 40%|####      | 8/20 [00:02<00:03]\n")
        outcome = self.scenario.outcome
        if outcome is Outcome.SUCCESS:
            return self._prediction(task, "succeeded", output=self._output(), metrics={"predict_time": 2.5})
        if outcome is Outcome.NO_MEDIA:
            return self._prediction(task, "succeeded", output=None)
        if outcome is Outcome.EXPIRED:
            return self._prediction(task, "aborted")
        if outcome is Outcome.MODERATED:
            return self._prediction(
                task,
                "failed",
                error="The input or output was flagged as sensitive. Please "
                "try again with different inputs. (E005)",
            )
        return self._prediction(task, "failed", error="CUDA out of memory. Tried to allocate 2.00 GiB")

    def _output(self) -> Any:
        if self.scenario.media == "video":
            return self.publish_video(self.scenario.size)  # video models answer one URL
        return [self.publish_image(self.scenario.size)]  # image models a list of URLs

    async def _cancel(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        self.cancels += 1
        task = self.tasks.get(request.path_params["id"])
        if task is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if task.peek(self.scenario) is not Phase.ENDED:
            task.canceled = True
        return JSONResponse(self._state(task, task.peek(self.scenario)))
