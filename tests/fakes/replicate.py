"""A fake Replicate predictions API (api.replicate.com/v1), per providers.md §9b.

Creates through `/v1/models/{owner}/{name}/predictions`, `/v1/predictions` (version) and
`/v1/deployments/{owner}/{name}/predictions` answer 201 with a prediction object; `GET /v1/predictions/{id}`
walks starting -> processing (tqdm-style logs) -> succeeded | failed | aborted; cancel answers the canceled
prediction. Errors are RFC 7807 `{title, detail, status}`; a 429 says "Your rate limit resets in ~Ns" in its
detail (a Retry-After header only when the scenario sets one). `Prefer` headers are recorded (the adapter
must never ask for the synchronous mode).

Strict as Replicate: the input is validated against the model version's published OpenAPI input schema
(bundled in schemas/replicate.json; a version or model not in it is 422 / 404, a deployment runs the model
the test maps it to). Violations answer 422 `{title: "Input validation failed", detail, status,
invalid_fields: [{type, field, description}]}`, e.g. "Additional property camera_fixed is not allowed"."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
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


@cache
def published_models() -> dict[str, dict[str, Any]]:
    """owner/name -> {version, input: its published input schema}, from the bundled test data."""
    text = (Path(__file__).parent / "schemas" / "replicate.json").read_text()
    models: dict[str, dict[str, Any]] = json.loads(text)["models"]
    return models


def _invalid_field(error: Any) -> dict[str, str]:
    """One entry of `invalid_fields` (from a jsonschema_rs error), in Replicate's words (it validates the
    input with the version's OpenAPI schema)."""
    path = ".".join(["input", *(str(p) for p in error.instance_path)])
    name = str(error.instance_path[-1]) if error.instance_path else "input"
    kind, kinds = error.kind, jsonschema_rs.ValidationErrorKind
    if isinstance(kind, kinds.AdditionalProperties):
        text = f"Additional property {kind.unexpected[0]} is not allowed"
        return {"type": "additional_property_not_allowed", "field": path, "description": text}
    if isinstance(kind, kinds.Required):
        return {"type": "required", "field": path, "description": f"{kind.property} is required"}
    if isinstance(kind, kinds.Enum):
        allowed = ", ".join(f'"{v}"' for v in kind.options)
        text = f"{name} must be one of the following: {allowed}"
        return {"type": "enum", "field": path, "description": text}
    if isinstance(kind, kinds.Type):
        return {"type": "invalid_type", "field": path, "description": f"Invalid type. {error.message}"}
    if isinstance(kind, kinds.MaxItems):
        text = f"Array must have at most {kind.limit} items"
        return {"type": "array_max_items", "field": path, "description": text}
    if isinstance(kind, kinds.Maximum):
        text = f"Must be less than or equal to {kind.limit}"
        return {"type": "number_lte", "field": path, "description": text}
    if isinstance(kind, kinds.Minimum):
        text = f"Must be greater than or equal to {kind.limit}"
        return {"type": "number_gte", "field": path, "description": text}
    return {"type": "invalid", "field": path, "description": str(error.message)}


def _ref_problem(key: str, value: Any) -> str | None:
    if isinstance(value, list):
        return next((p for p in (_ref_problem(key, v) for v in value) if p), None)
    if not isinstance(value, str) or not value.startswith(("data:", "http")):
        return None
    if "image" in key or "frame" in key:
        return image_ref_problem(value)
    return None if is_http_url(value) or decode_data_uri(value) else "is not a valid URL or data URI"


def input_problems(body: Any, schema: dict[str, Any]) -> list[dict[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return [{"type": "required", "field": "input", "description": "input is required"}]
    inputs = body["input"]
    found = [_invalid_field(e) for e in jsonschema_rs.validator_for(schema).iter_errors(inputs)]
    for key, value in inputs.items():
        problem = _ref_problem(key, value)
        if problem:
            found.append({"type": "format", "field": f"input.{key}", "description": f"{key} {problem}"})
    return found


class FakeReplicate(FakeUpstream):
    def __init__(
        self, scenario: Scenario | None = None, *, deployments: Mapping[str, str] | None = None
    ) -> None:
        self.models = published_models()
        self.deployments = dict(deployments or {})  # owner/name of a deployment -> the model it runs
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
            Route("/v1/deployments/{owner}/{name}/predictions", self._create_deployment, methods=["POST"]),
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
        if not self.bearer_ok(request):
            return self._unauthorized()
        if model not in self.models:
            self.count_attempt(request)
            return problem(404, "Not found", "The requested resource could not be found.")
        return await self._create(request, model, None)

    async def _create_deployment(self, request: Request) -> Response:
        name = f"{request.path_params['owner']}/{request.path_params['name']}"
        if not self.bearer_ok(request):
            return self._unauthorized()
        if name not in self.deployments:
            self.count_attempt(request)
            return problem(404, "Not found", "The requested resource could not be found.")
        return await self._create(request, self.deployments[name], None, path=name)

    async def _create_version(self, request: Request) -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        body = await json_body(request)
        version = body.get("version") if isinstance(body, dict) else None
        version_id = str(version).rpartition(":")[2]
        model = next((m for m, v in self.models.items() if v["version"] == version_id), None)
        if not isinstance(version, str) or not VERSION.match(version) or model is None:
            self.count_attempt(request)
            return problem(422, "Invalid version or not permitted", "The specified version does not exist")
        return await self._create(request, model, version_id)

    async def _create(self, request: Request, model: str, version: str | None, path: str = "") -> Response:
        if not self.bearer_ok(request):
            return self._unauthorized()
        refused = self.count_attempt(request)
        if "prefer" in request.headers:
            self.prefer_headers.append(request.headers["prefer"])
        if refused is not None:
            return self._refused(refused)
        body = await json_body(request)
        found = input_problems(body, self.models[model]["input"])
        if found:
            detail = "\n".join(f"- {f['field']}: {f['description']}" for f in found)
            return problem(422, "Input validation failed", detail, invalid_fields=found)
        task = self.new_task(body, path=path or model)
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
