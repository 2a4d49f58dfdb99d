"""A fake Gemini Enterprise Agent Platform (ex-Vertex AI) serving Veo 3.1, per providers.md §4b and §10.

Wire format: `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning` (or
`/v1/publishers/google/models/...` with an API key), `Authorization: Bearer <token>` or `x-goog-api-key`
(else 401 UNAUTHENTICATED), another project -> 403, unknown fields -> 400, the operation name as the only
answer, `:fetchPredictOperation {operationName}` with `done` absent until finished, inline
`bytesBase64Encoded` videos, `:cancel` on the operation, and plain `GET` of a Veo operation refused ("The
Operation ID must be a Long", as clients reported).

Scenarios: ok, rai_filtered (done, no video, raiMediaFilteredCount 1 + reason), moderated (operation error 3
with a Responsible-AI message), failed (operation error 13), gcs (a gcsUri instead of bytes), never_done,
rate_limited_once (429 RESOURCE_EXHAUSTED on create), server_error_once (500), server_error_always (503),
poll_error_once (503 on one fetch)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from tests.fakes.common import FakeUpstream, image_size, json_response, mp4_bytes
from tests.fakes.gemini import GoogleError, invalid, retry_info

PROJECT = "test-project"
LOCATION = "us-central1"
TOKEN = "ya29.test-access-token"
API_KEY = "AQ.test-agent-platform-key"
MODELS = frozenset({"veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"})
INSTANCE_FIELDS = frozenset({"prompt", "image", "lastFrame", "referenceImages", "video", "mask"})
PARAMETER_FIELDS = frozenset(
    {
        "sampleCount",
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "negativePrompt",
        "personGeneration",
        "generateAudio",
        "seed",
        "storageUri",
        "enhancePrompt",
        "fps",
        "resizeMode",
        "compressionQuality",
        "labels",
        "pubsubTopic",
    }
)
SHORT_SIDE = {"720p": 720, "1080p": 1080}
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
RAI_REASON = (
    "Unable to generate videos because the prompt or image violates our policies. You will not be "
    "charged for blocked videos. Support codes: 29310472"
)


@dataclass
class Operation:
    name: str
    model: str
    parameters: dict[str, Any]
    polls: int = 0
    result: dict[str, Any] | None = None  # set when done: {"response": ...} or {"error": ...}

    def as_json(self) -> dict[str, Any]:
        if self.result is None:
            return {"name": self.name}
        return {"name": self.name, "done": True, **self.result}


def _check_image(value: Any, where: str) -> None:
    if not isinstance(value, dict) or value.get("mimeType") not in ("image/png", "image/jpeg", "image/webp"):
        raise invalid(f"{where}: mimeType must be image/png, image/jpeg or image/webp")
    if ("bytesBase64Encoded" in value) == ("gcsUri" in value):
        raise invalid(f"{where}: give exactly one of bytesBase64Encoded and gcsUri")
    if "bytesBase64Encoded" in value:
        try:
            image_size(base64.b64decode(value["bytesBase64Encoded"], validate=True))
        except (binascii.Error, OSError):
            raise invalid(f"{where}: the image cannot be decoded") from None


def check_instance(inst: Any) -> None:
    if not isinstance(inst, dict) or not isinstance(inst.get("prompt"), str) or not inst["prompt"].strip():
        raise invalid("instances[0].prompt is required")
    for name in set(inst) - INSTANCE_FIELDS:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at 'instances[0]'.")
    for name in ("image", "lastFrame"):
        if name in inst:
            _check_image(inst[name], f"instances[0].{name}")
    if "lastFrame" in inst and "image" not in inst:
        raise invalid("lastFrame needs image (the first frame)")
    refs = inst.get("referenceImages", [])
    if not isinstance(refs, list) or len(refs) > 3:
        raise invalid("referenceImages: at most 3")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or ref.get("referenceType") not in ("asset", "style"):
            raise invalid(f"referenceImages[{i}].referenceType must be asset or style")
        _check_image(ref.get("image"), f"referenceImages[{i}].image")


def check_parameters(params: Any) -> None:
    if not isinstance(params, dict):
        raise invalid("parameters must be an object")
    for name in set(params) - PARAMETER_FIELDS:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at 'parameters'.")
    checks = {
        "durationSeconds": params.get("durationSeconds", 8) in (4, 6, 8),
        "aspectRatio": params.get("aspectRatio", "16:9") in ("16:9", "9:16"),
        "resolution": params.get("resolution", "720p") in SHORT_SIDE,
        "sampleCount": params.get("sampleCount", 1) in (1, 2, 3, 4),
        "seed": 0 <= params.get("seed", 0) < 2**32,
        "generateAudio": isinstance(params.get("generateAudio", True), bool),
    }
    for name, ok in checks.items():
        if not ok:
            raise invalid(f"Unsupported value for parameters.{name}: {params.get(name)!r}")


class FakeVertex(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        app = self.app
        models = "/v1/projects/{project}/locations/{location}/publishers/google/models"
        app.post(models + "/{target}")(self.model_call)
        app.post("/v1/publishers/google/models/{target}")(self.express_call)
        ops = models + "/{model}/operations/{target}"
        app.post(ops)(self.cancel)
        app.get(ops)(self.get_operation)

    def reset(self) -> None:
        super().reset()
        self.operations: dict[str, Operation] = {}
        self.accepted: list[dict[str, Any]] = []
        self.cancels: list[str] = []
        self.steps = 2

    def _denied(self, headers: Mapping[str, str], project: str | None) -> Response | None:
        bearer = headers.get("authorization") == f"Bearer {TOKEN}"
        if not bearer and headers.get("x-goog-api-key") != API_KEY:
            return GoogleError(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. "
                "Expected OAuth 2 access token, login cookie or other valid authentication "
                "credential.",
            ).response()
        if project is not None and project != PROJECT:
            return GoogleError(
                403, "PERMISSION_DENIED", f"Permission denied on resource project {project}."
            ).response()
        return None

    async def model_call(self, project: str, location: str, target: str, request: Request) -> Response:
        prefix = f"projects/{project}/locations/{location}/publishers/google/models"
        return await self._model_call(prefix, project, target, request)

    async def express_call(self, target: str, request: Request) -> Response:
        return await self._model_call("publishers/google/models", None, target, request)

    async def _model_call(self, prefix: str, project: str | None, target: str, request: Request) -> Response:
        got = await self.record(request)
        model, _, method = target.partition(":")
        if method == "predictLongRunning":
            self.submissions += 1
        denied = self._denied(got.headers, project)
        if denied is not None:
            return denied
        if model not in MODELS:
            return GoogleError(404, "NOT_FOUND", f"Publisher Model `{prefix}/{model}` not found.").response()
        try:
            body = json.loads(got.body)
        except ValueError:
            return invalid("Invalid JSON payload received.").response()
        if method == "predictLongRunning":
            return await self._create(f"{prefix}/{model}", model, body)
        if method == "fetchPredictOperation":
            return self._fetch(model, body)
        return GoogleError(404, "NOT_FOUND", f"Method not found: {method}").response()

    async def _create(self, model_path: str, model: str, body: Any) -> Response:
        if self.once("rate_limited_once"):
            return GoogleError(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.",
                [retry_info(self.retry_after)],
            ).response()
        if self.once("server_error_once"):
            return GoogleError(500, "INTERNAL", "Internal error encountered.").response()
        if self.scenario == "server_error_always":
            return GoogleError(503, "UNAVAILABLE", "The service is currently unavailable.").response()
        try:
            if not isinstance(body, dict) or set(body) - {"instances", "parameters"}:
                raise invalid("Invalid JSON payload received: only instances and parameters are known.")
            instances = body.get("instances")
            if not isinstance(instances, list) or len(instances) != 1:
                raise invalid("instances must hold exactly one instance")
            check_instance(instances[0])
            check_parameters(body.get("parameters", {}))
        except GoogleError as exc:
            return exc.response()
        op = Operation(f"{model_path}/operations/{uuid.uuid4()}", model, body.get("parameters", {}))
        self.operations[op.name] = op
        self.accepted.append(body)
        return json_response(200, {"name": op.name})

    def _fetch(self, model: str, body: Any) -> Response:
        name = body.get("operationName") if isinstance(body, dict) else None
        op = self.operations.get(str(name))
        if op is None:
            return GoogleError(404, "NOT_FOUND", f"Operation {name} not found.").response()
        if op.model != model:
            return invalid(f"The operation belongs to {op.model}, not {model}.").response()
        if self.once("poll_error_once"):
            return GoogleError(503, "UNAVAILABLE", "The service is currently unavailable.").response()
        if op.result is None and not self.hold and self.scenario != "never_done":
            op.polls += 1
            if op.polls >= self.steps:
                op.result = self._outcome(op)
        return json_response(200, op.as_json())

    def _outcome(self, op: Operation) -> dict[str, Any]:
        if self.scenario == "moderated":
            return {
                "error": {
                    "code": 3,
                    "message": "The prompt could not be submitted. This prompt contains "
                    "sensitive words that violate Google's Responsible AI practices.",
                }
            }
        if self.scenario == "failed":
            return {"error": {"code": 13, "message": "Internal error encountered."}}
        if self.scenario == "rai_filtered":
            return {
                "response": {
                    "@type": RESPONSE_TYPE,
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": [RAI_REASON],
                }
            }
        if self.scenario == "gcs":
            return {
                "response": {
                    "@type": RESPONSE_TYPE,
                    "videos": [{"gcsUri": "gs://bucket/sample_0.mp4", "mimeType": "video/mp4"}],
                }
            }
        short = SHORT_SIDE[op.parameters.get("resolution", "720p")]
        long = short * 16 // 9
        w, h = (long, short) if op.parameters.get("aspectRatio", "16:9") == "16:9" else (short, long)
        data = mp4_bytes(w, h, int(op.parameters.get("durationSeconds", 8)))
        video = {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "video/mp4"}
        return {"response": {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": 0, "videos": [video]}}

    async def cancel(
        self, project: str, location: str, model: str, target: str, request: Request
    ) -> Response:
        got = await self.record(request)
        op_id, _, method = target.partition(":")
        denied = self._denied(got.headers, project)
        if denied is not None:
            return denied
        name = f"projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{op_id}"
        op = self.operations.get(name)
        if method != "cancel" or op is None:
            return GoogleError(404, "NOT_FOUND", f"Operation {name} not found.").response()
        self.cancels.append(name)
        if op.result is None:
            op.result = {"error": {"code": 1, "message": "CANCELLED"}}
        return json_response(200, {})

    async def get_operation(
        self, project: str, location: str, model: str, target: str, request: Request
    ) -> Response:
        await self.record(request)
        return invalid("The Operation ID must be a Long, but was " + target).response()
