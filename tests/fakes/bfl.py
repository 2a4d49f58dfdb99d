"""A fake Black Forest Labs API (FLUX.2 [pro] / [max]) on loopback, per providers.md §5 and §10.

Wire format: `x-key` (else 401), `POST /v1/flux-2-pro|flux-2-max` with FastAPI-style 422 validation
(`{"detail": [{loc, msg, type}]}`) against tests/fakes/schemas/bfl_flux2.json (BFL's Flux2Inputs: width/height
64-2048 and multiples of 16, at most 4 MP in total, output_format jpeg|png|webp, no unknown fields) plus
input_image..input_image_8 as URLs or decodable base64, answering `{id, polling_url, cost, ...}` with
the polling URL on ANOTHER host (`localhost` while the API is `127.0.0.1`: a regional host) where the task
lives, `GET /v1/get_result?id=` -> `Pending` (with progress) -> `Ready` + `result.sample`, a signed delivery
URL that needs no key. `GET /v1/credits` -> `{credits}` (the cheap authenticated read of `backends check
--probe`).

Scenarios: ok, request_moderated, content_moderated, error, task_not_found, no_media (Ready without sample),
expired (the delivery URL answers 403), never_done, out_of_credits (402), rate_limited_once (429 with
`retry_after` in the body), server_error_once, server_error_always, poll_error_once."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from tests.fakes.common import FakeUpstream, image_bytes, image_size, json_response
from tests.fakes.schema_check import issues, schema

API_KEY = "bfl-test-key"
ENDPOINTS = frozenset({"flux-2-pro", "flux-2-max"})
SCHEMA = "bfl_flux2.json"
MAX_PIXELS: int = schema(SCHEMA)["x-limits"]["max_pixels"]
INPUT_FIELDS = ("input_image", *(f"input_image_{i}" for i in range(2, 9)))
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass
class Task:
    id: str
    endpoint: str
    body: dict[str, Any]
    polls: int = 0


def _issue(field: str, msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


def _image_issues(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    issues = []
    for field in INPUT_FIELDS:
        value = body.get(field)
        if value is None or str(value).startswith(("http://", "https://")):
            continue
        try:
            image_size(base64.b64decode(str(value), validate=True))
        except (binascii.Error, OSError):
            issues.append(_issue(field, "Input image must be a URL or base64-encoded image"))
    return issues


def validation_issues(body: Any) -> list[dict[str, Any]]:
    found = [_issue(i.dotted, i.message, i.keyword) for i in issues(SCHEMA, body)]
    if found or not isinstance(body, dict):
        return found
    width, height = body.get("width"), body.get("height")
    if isinstance(width, int) and isinstance(height, int) and width * height > MAX_PIXELS:
        found.append(_issue("width", "width x height must be at most 4 megapixels"))
    return found + _image_issues(body)


class FakeBfl(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.app.post("/v1/{endpoint}")(self.create)
        self.app.get("/v1/get_result")(self.get_result)
        self.app.get("/delivery/{name}")(self.delivery)
        self.app.get("/v1/credits")(self.credits)

    def reset(self) -> None:
        super().reset()
        self.tasks: dict[str, Task] = {}
        self.polling_host = "localhost"
        self.steps = 2

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [t.body for t in self.tasks.values()]

    def _denied(self, headers: Mapping[str, str]) -> Response | None:
        if headers.get("x-key") == API_KEY:
            return None
        return json_response(401, {"detail": "Invalid or missing API key"})

    def _scripted(self) -> Response | None:
        if self.scenario == "out_of_credits":
            return json_response(402, {"detail": "Insufficient credits. Please add credits to your account."})
        if self.once("rate_limited_once"):
            return json_response(
                429,
                {
                    "error": "rate_limit_exceeded",
                    "message": "Too many active tasks",
                    "retry_after": float(self.retry_after),
                },
                {"x-ratelimit-limit": "24", "x-ratelimit-remaining": "0"},
            )
        if self.once("server_error_once") or self.scenario == "server_error_always":
            return json_response(500, {"detail": "Internal Server Error"})
        return None

    async def create(self, endpoint: str, request: Request) -> Response:
        got = await self.record(request)
        if endpoint not in ENDPOINTS:
            return json_response(404, {"detail": "Not Found"})
        self.submissions += 1
        early = self._denied(got.headers) or self._scripted()
        if early is not None:
            return early
        try:
            body = json.loads(got.body)
        except ValueError:
            return json_response(422, {"detail": [_issue("", "JSON decode error", "json_invalid")]})
        issues = validation_issues(body)
        if issues:
            return json_response(422, {"detail": issues})
        task = Task(str(uuid.uuid4()), endpoint, body)
        self.tasks[task.id] = task
        polling = f"http://{self.polling_host}:{self.port}/v1/get_result?id={task.id}"
        return json_response(
            200, {"id": task.id, "polling_url": polling, "cost": 3.0, "input_mp": 0.0, "output_mp": 1.0}
        )

    async def get_result(self, request: Request) -> Response:
        got = await self.record(request)
        denied = self._denied(got.headers)
        if denied is not None:
            return denied
        task_id = got.query.get("id", "")
        task = self.tasks.get(task_id)
        on_its_host = got.headers.get("host", "").split(":")[0] == self.polling_host
        if task is None or not on_its_host or self.scenario == "task_not_found":
            return json_response(200, {"id": task_id, "status": "Task not found"})
        if self.once("poll_error_once"):
            return json_response(500, {"detail": "Internal Server Error"})
        if not self.hold and self.scenario != "never_done":
            task.polls += 1
        return json_response(200, self._state(task))

    def _state(self, task: Task) -> dict[str, Any]:
        if self.scenario == "request_moderated":
            return {
                "id": task.id,
                "status": "Request Moderated",
                "details": {"Moderation Reasons": ["Derivative Works Filter"]},
            }
        if task.polls < self.steps:
            return {"id": task.id, "status": "Pending", "progress": task.polls / self.steps}
        if self.scenario == "content_moderated":
            return {"id": task.id, "status": "Content Moderated", "details": {"Moderation Reasons": ["NSFW"]}}
        if self.scenario == "error":
            return {"id": task.id, "status": "Error", "details": {"error": "generation failed"}}
        if self.scenario == "no_media":
            return {"id": task.id, "status": "Ready", "result": {}}
        fmt = task.body.get("output_format", "jpeg")
        sample = (
            f"http://{self.polling_host}:{self.port}/delivery/{task.id}.{fmt}"
            f"?se={int(time.time()) + 600}&sig=fake-signature"
        )
        return {
            "id": task.id,
            "status": "Ready",
            "progress": None,
            "result": {
                "sample": sample,
                "prompt": task.body["prompt"],
                "seed": task.body.get("seed"),
                "start_time": time.time() - 2,
                "end_time": time.time(),
                "duration": 2.0,
            },
        }

    async def credits(self, request: Request) -> Response:
        got = await self.record(request)
        return self._denied(got.headers) or json_response(200, {"credits": 42.5})

    async def delivery(self, name: str, request: Request) -> Response:
        await self.record(request)
        task = self.tasks.get(name.rsplit(".", 1)[0])
        if task is None or self.scenario == "expired":
            xml = (
                "<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed"
                "</Message></Error>"
            )
            return Response(xml, status_code=403, media_type="application/xml")
        fmt = str(task.body.get("output_format", "jpeg"))
        data = image_bytes(int(task.body.get("width") or 1024), int(task.body.get("height") or 768), fmt)
        return Response(data, media_type=MEDIA_TYPES[fmt])
