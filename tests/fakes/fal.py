"""A fake fal.ai queue (queue.fal.run), per providers.md §9a.

`POST /{endpoint id}` (any depth: "fal-ai/veo3.1/fast") with `Authorization: Key` answers `{request_id,
status_url, response_url, cancel_url, queue_position}`; status, result, cancel and the SSE status stream live
under `/{owner}/{alias}/requests/{id}` without the endpoint subpath. The result answers
`{"detail": "Request is still in progress"}` (400) before completion; a content-policy refusal is a 422
validation error of type `content_policy_violation`; image outputs carry `has_nsfw_concepts`. Cancel answers
202 CANCELLATION_REQUESTED (queued requests are dropped, running ones only get the signal), 400
ALREADY_COMPLETED, or 404 NOT_FOUND. Not reproduced: webhooks (`?fal_webhook=`) and their ED25519
signatures.

Strict as fal: every submission is validated against the endpoint's published input schema (bundled in
schemas/fal.json): an endpoint without one is 404, an unknown field, a missing required one, a value outside
an enum or a limit is a 422 `{"detail": [{loc, msg, type}]}` as fal's pydantic apps answer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.fake_server import (
    FakeTask,
    FakeUpstream,
    Outcome,
    Phase,
    Scenario,
    decode_data_uri,
    image_bytes,
    image_ref_problem,
    is_http_url,
    json_body,
    json_error,
    mp4_bytes,
)

REQUEST = "/{owner}/{alias}/requests/{request_id}"
STREAM_INTERVAL = 0.01


def detail(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return json_error(status, {"detail": text}, headers)


def validation_error(field: str, msg: str, kind: str) -> JSONResponse:
    return json_error(422, {"detail": [{"loc": ["body", field], "msg": msg, "type": kind}]})


@cache
def published_schemas() -> dict[str, dict[str, Any]]:
    """endpoint id -> its published input schema (JSON Schema), from the bundled test data."""
    text = (Path(__file__).parent / "schemas" / "fal.json").read_text()
    endpoints: dict[str, dict[str, Any]] = json.loads(text)["endpoints"]
    return endpoints


def _pydantic_error(error: Any) -> tuple[str, str, str]:
    """(field, msg, type) of a schema violation (a jsonschema_rs error), in the words of a pydantic v2 app."""
    field = ".".join(str(p) for p in error.instance_path) or "input"
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        return str(kind.unexpected[0]), "Extra inputs are not permitted", "extra_forbidden"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return str(kind.property), "Field required", "missing"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        return field, "Input should be " + ", ".join(repr(v) for v in kind.options), "enum"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.MaxItems):
        return field, f"List should have at most {kind.limit} items", "too_long"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.MinItems):
        return field, f"List should have at least {kind.limit} items", "too_short"
    return field, str(error.message), "value_error"


def _url_problem(key: str, value: Any) -> str | None:
    if key.endswith("_urls"):
        return next((p for p in (_url_problem(key[:-1], v) for v in value) if p), None)
    if "image" in key or "frame" in key:
        return image_ref_problem(value)
    if is_http_url(value) or (isinstance(value, str) and decode_data_uri(value) is not None):
        return None
    return "must be an http(s) URL or a base64 data URI"


def input_problem(body: Any, schema: dict[str, Any]) -> JSONResponse | None:
    if not isinstance(body, dict):
        return detail(422, "the input must be a JSON object")
    errors = list(jsonschema_rs.validator_for(schema).iter_errors(body))
    if errors:
        return validation_error(*_pydantic_error(errors[0]))
    if not body["prompt"].strip():
        return validation_error("prompt", "String should have at least 1 character", "string_too_short")
    for key, value in body.items():
        problem = _url_problem(key, value) if key.endswith(("_url", "_urls")) else None
        if problem:
            return validation_error(key, problem, "url_parsing")
    return None


class FakeFal(FakeUpstream):
    def __init__(self, scenario: Scenario | None = None) -> None:
        self.schemas = published_schemas()  # endpoint id -> input schema (other endpoints: 404)
        self.cancel_answers: list[str] = []
        super().__init__(scenario)

    def reset(self, scenario: Scenario | None = None) -> None:
        super().reset(scenario)
        self.cancel_answers.clear()

    def routes(self) -> list[BaseRoute]:
        return [
            Route(REQUEST + "/status/stream", self._stream, methods=["GET"]),
            Route(REQUEST + "/status", self._status, methods=["GET"]),
            Route(REQUEST + "/cancel", self._cancel, methods=["PUT"]),
            Route(REQUEST, self._result, methods=["GET"]),
            Route("/{endpoint:path}", self._submit, methods=["POST"]),
        ]

    def _unauthorized(self, app: str) -> JSONResponse:
        return detail(
            401, f"Cannot access application '{app}'. Authentication is required to access this application."
        )

    def _refused(self, status: int) -> JSONResponse:
        if status == 429:
            return detail(429, "Too many concurrent requests", self.throttle_headers(status))
        return detail(status, "Service temporarily unavailable" if status == 503 else "Internal Server Error")

    async def _submit(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"].strip("/")
        if not self.bearer_ok(request, "Key"):
            return self._unauthorized(endpoint)
        refused = self.count_attempt(request)
        if self.scenario.delay:
            await asyncio.sleep(self.scenario.delay)
        if refused is not None:
            return self._refused(refused)
        schema = self.schemas.get(endpoint)
        if schema is None:
            return detail(404, f"Application '{endpoint}' not found")
        body = await json_body(request)
        problem = input_problem(body, schema)
        if problem is not None:
            return problem
        task = self.new_task(body, path=endpoint)
        base = self._base(task)
        return JSONResponse(
            {
                "request_id": task.id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
                "gateway_request_id": task.id,
            }
        )

    def _base(self, task: FakeTask) -> str:
        owner, alias = task.path.split("/")[:2]
        return f"{self.base_url}/{owner}/{alias}/requests/{task.id}"

    def _find(self, request: Request) -> FakeTask | None:
        task = self.tasks.get(request.path_params["request_id"])
        app = f"{request.path_params['owner']}/{request.path_params['alias']}"
        return task if task is not None and task.path.startswith(app) else None

    async def _status(self, request: Request) -> Response:
        if not self.bearer_ok(request, "Key"):
            return self._unauthorized(request.path_params["alias"])
        refused = self.count_poll()
        if refused is not None:
            return self._refused(refused)
        task = self._find(request)
        if task is None:
            return detail(404, "Request not found")
        return JSONResponse(self._status_body(task, task.advance(self.scenario)))

    def _status_body(self, task: FakeTask, phase: Phase) -> dict[str, Any]:
        base = {"request_id": task.id, "response_url": self._base(task)}
        if phase is Phase.QUEUED:
            return {**base, "status": "IN_QUEUE", "queue_position": 0}
        if phase is Phase.RUNNING:
            return {**base, "status": "IN_PROGRESS", "logs": [{"message": "step 3/20", "level": "INFO"}]}
        done = {**base, "status": "COMPLETED", "logs": [], "metrics": {"inference_time": 1.5}}
        if phase is Phase.CANCELED:
            return {**done, "error": "Request was cancelled", "error_type": "request_cancelled"}
        if self.scenario.outcome is Outcome.FAILED:
            return {**done, "error": "Internal error while running the model", "error_type": "runner_error"}
        return done

    async def _stream(self, request: Request) -> Response:
        if not self.bearer_ok(request, "Key"):
            return self._unauthorized(request.path_params["alias"])
        task = self._find(request)
        if task is None:
            return detail(404, "Request not found")
        return StreamingResponse(self._events(task), media_type="text/event-stream")

    async def _events(self, task: FakeTask) -> AsyncIterator[str]:
        yield ": keep-alive\n\n"
        while True:
            body = self._status_body(task, task.advance(self.scenario))
            yield f"data: {json.dumps(body)}\n\n"
            if body["status"] == "COMPLETED":
                return
            await asyncio.sleep(STREAM_INTERVAL)

    async def _result(self, request: Request) -> Response:
        if not self.bearer_ok(request, "Key"):
            return self._unauthorized(request.path_params["alias"])
        task = self._find(request)
        if task is None:
            return detail(404, "Request not found")
        if task.peek(self.scenario) is not Phase.ENDED:
            return detail(400, "Request is still in progress")
        outcome = self.scenario.outcome
        if outcome is Outcome.MODERATED:
            return validation_error(
                "prompt",
                "The content could not be processed because it contained material "
                "flagged by a content checker.",
                "content_policy_violation",
            )
        if outcome is Outcome.FAILED:
            return detail(500, "Internal error while running the model")
        return JSONResponse(self._output(outcome, sync=bool(task.body.get("sync_mode"))))

    def _output(self, outcome: Outcome, *, sync: bool = False) -> dict[str, Any]:
        """The model's output; with `sync_mode` an image comes as a data URI (not stored by fal)."""
        size, seed = self.scenario.size, 1234
        if outcome is Outcome.NO_MEDIA:
            return (
                {"video": None, "seed": seed}
                if self.scenario.media == "video"
                else {"images": [], "seed": seed}
            )
        if self.scenario.media == "video":
            data = mp4_bytes(*size)
            return {
                "video": {
                    "url": self.publish(data, "video/mp4"),
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(data),
                },
                "seed": seed,
            }
        inline = f"data:image/png;base64,{base64.b64encode(image_bytes(*size)).decode()}"
        image = {
            "url": inline if sync else self.publish_image(size),
            "width": size[0],
            "height": size[1],
            "content_type": "image/png",
        }
        return {"images": [image], "seed": seed, "has_nsfw_concepts": [outcome is Outcome.FLAGGED]}

    async def _cancel(self, request: Request) -> Response:
        if not self.bearer_ok(request, "Key"):
            return self._unauthorized(request.path_params["alias"])
        self.cancels += 1
        task = self._find(request)
        answer, status = "NOT_FOUND", 404
        if task is not None:
            phase = task.peek(self.scenario)
            if phase in (Phase.ENDED, Phase.CANCELED):
                answer, status = "ALREADY_COMPLETED", 400
            else:
                task.canceled = phase is Phase.QUEUED  # a running request only gets the signal
                answer, status = "CANCELLATION_REQUESTED", 202
        self.cancel_answers.append(answer)
        return JSONResponse({"status": answer}, status_code=status)
