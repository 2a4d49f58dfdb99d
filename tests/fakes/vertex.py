"""A fake Gemini Enterprise Agent Platform (ex-Vertex AI) serving Veo 3.1, per providers.md §4b and §10.

Wire format: `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning` (or
`/v1/publishers/google/models/...`, express mode with an API key), `Authorization: Bearer <token>` or
`x-goog-api-key` (else 401 UNAUTHENTICATED), another project -> 403, the operation name as the only answer,
`:fetchPredictOperation {operationName}` with `done` absent until finished, inline `bytesBase64Encoded`
videos, `:cancel` on the operation, and plain `GET` of a Veo operation refused ("The Operation ID must be a
Long", as clients reported).

Strict as the real API, from tests/fakes/schemas/vertex_veo.json (Google's reference, model pages and SDK):
unknown fields at any level, parameter types, enums and ranges, image MIME types, plain base64 only, 20 MB
images, first/last frame rules, and reference images (at most 3 assets, only with 8-second 16:9 clips, not on
Lite).

Tokens: `/token` is an OAuth 2 token endpoint for service-account keys (a JWT bearer assertion signed by a key
the test `trust()`s); it mints tokens living `token_lifetime` seconds, which `revoke_tokens()` invalidates
(what a token past its hour looks like). The static TOKEN is always honoured.

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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import google.auth.exceptions
from fastapi import Request, Response
from google.auth import jwt

from tests.fakes.common import FakeUpstream, image_size, json_response, mp4_bytes
from tests.fakes.gemini import GoogleError, invalid, retry_info, unknown_fields

PROJECT = "test-project"
LOCATION = "us-central1"
TOKEN = "ya29.test-access-token"  # a static token the fake always takes (auth = "bearer")
API_KEY = "AQ.test-agent-platform-key"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google requires in the assertion's aud
# What the real API takes and refuses, written from Google's reference and SDK (sources in the file).
SCHEMA: Mapping[str, Any] = json.loads((Path(__file__).parent / "schemas/vertex_veo.json").read_text())
MODELS: Mapping[str, Mapping[str, Any]] = SCHEMA["models"]
SHORT_SIDE: Mapping[str, int] = SCHEMA["short_side"]
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
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object")
    unknown_fields(value, SCHEMA["image_fields"], where)
    if value.get("mimeType") not in SCHEMA["image_mime_types"]:
        raise invalid(f"{where}: mimeType must be one of {', '.join(SCHEMA['image_mime_types'])}")
    if ("bytesBase64Encoded" in value) == ("gcsUri" in value):
        raise invalid(f"{where}: give exactly one of bytesBase64Encoded and gcsUri")
    if "bytesBase64Encoded" in value:
        try:  # plain base64 only: a `data:` URI is refused
            data = base64.b64decode(str(value["bytesBase64Encoded"]), validate=True)
            image_size(data)
        except (binascii.Error, OSError, ValueError):
            raise invalid(f"{where}: the image cannot be decoded") from None
        if len(data) > SCHEMA["max_image_bytes"]:
            raise invalid(f"{where}: the image is larger than 20 MB")


def _check_references(model: str, refs: Any, params: Mapping[str, Any]) -> None:
    rules = MODELS[model]["reference_images"]
    if rules is None:
        raise invalid("Your use case is currently not supported: referenceImages on this model.")
    if not isinstance(refs, list) or not 1 <= len(refs) <= rules["max"]:
        raise invalid(f"referenceImages: 1 to {rules['max']} images")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise invalid(f"referenceImages[{i}] must be an object")
        unknown_fields(ref, SCHEMA["reference_image_fields"], f"instances[0].referenceImages[{i}]")
        if str(ref.get("referenceType", "")).lower() not in rules["types"]:
            raise invalid(f"referenceImages[{i}].referenceType must be one of {', '.join(rules['types'])}")
        _check_image(ref.get("image"), f"instances[0].referenceImages[{i}].image")
    if params.get("durationSeconds", 8) not in rules["durations"]:
        raise invalid("Reference image to video only supports a durationSeconds of 8.")
    if params.get("aspectRatio", "16:9") not in rules["aspect_ratios"]:
        raise invalid("Reference image to video only supports the 16:9 aspect ratio.")


def check_instance(model: str, inst: Any, params: Mapping[str, Any]) -> None:
    if not isinstance(inst, dict) or not isinstance(inst.get("prompt"), str) or not inst["prompt"].strip():
        raise invalid("instances[0].prompt is required")
    unknown_fields(inst, SCHEMA["instance_fields"], "instances[0]")
    for name in ("image", "lastFrame"):
        if name in inst:
            _check_image(inst[name], f"instances[0].{name}")
    if "lastFrame" in inst and "image" not in inst:
        raise invalid("lastFrame needs image (the first frame)")
    if "referenceImages" in inst:
        if "image" in inst or "lastFrame" in inst:
            raise invalid("referenceImages cannot be combined with image or lastFrame")
        _check_references(model, inst["referenceImages"], params)


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    python = {"string": str, "boolean": bool, "object": dict}[kind]
    return isinstance(value, python)


def check_parameters(params: Any) -> None:
    if not isinstance(params, dict):
        raise invalid("parameters must be an object")
    specs: Mapping[str, Mapping[str, Any]] = SCHEMA["parameters"]
    unknown_fields(params, list(specs), "parameters")
    for name, value in params.items():
        spec = specs[name]
        ok = _type_ok(value, spec["type"]) and value in spec.get("enum", [value])
        if ok and "minimum" in spec:
            ok = spec["minimum"] <= value <= spec["maximum"]
        if not ok:
            raise invalid(f"Unsupported value for parameters.{name}: {value!r}")


class FakeVertex(FakeUpstream):
    def __init__(self) -> None:
        self.public_keys: dict[str, str] = {}
        super().__init__()
        app = self.app
        models = "/v1/projects/{project}/locations/{location}/publishers/google/models"
        app.post(models + "/{target}")(self.model_call)
        app.post("/v1/publishers/google/models/{target}")(self.express_call)
        ops = models + "/{model}/operations/{target}"
        app.post(ops)(self.cancel)
        app.get(ops)(self.get_operation)
        app.post("/token")(self.token)
        app.get("/v1beta1/publishers/google/models")(self.list_models)

    def reset(self) -> None:
        super().reset()
        self.operations: dict[str, Operation] = {}
        self.accepted: list[dict[str, Any]] = []
        self.cancels: list[str] = []
        self.steps = 2
        self.token_lifetime = 3600  # expires_in of the tokens this fake mints
        self.tokens: set[str] = set()  # minted and still honoured (revoke_tokens() forgets them)
        self.grants = 0  # token requests answered with a token
        self.unauthorized = 0  # requests refused with 401

    # -- OAuth 2 token endpoint (RFC 7523 JWT bearer grant, what a service-account key signs) --------------

    def trust(self, key_id: str, public_pem: str) -> None:
        """Accept assertions signed by this key (the service account's public key)."""
        self.public_keys[key_id] = public_pem

    def revoke_tokens(self) -> None:
        """Every token minted so far stops working (as when it expires upstream)."""
        self.tokens.clear()

    async def token(self, request: Request) -> Response:
        got = await self.record(request)
        form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
        if form.get("grant_type") != JWT_GRANT:
            return json_response(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant"}
            )
        try:
            assertion = form.get("assertion", "")
            claims = jwt.decode(assertion, certs=self.public_keys, audience=TOKEN_AUDIENCE)  # type: ignore[no-untyped-call]
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            return json_response(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"})
        if "cloud-platform" not in str(claims.get("scope", "")):
            return json_response(400, {"error": "invalid_scope", "error_description": "Invalid scope"})
        self.grants += 1
        access = f"ya29.minted-{self.grants}-{uuid.uuid4().hex[:8]}"
        self.tokens.add(access)
        return json_response(
            200, {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _denied(self, headers: Mapping[str, str], project: str | None) -> Response | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        bearer = scheme == "Bearer" and (token == TOKEN or token in self.tokens)
        if not bearer and headers.get("x-goog-api-key") != API_KEY:
            self.unauthorized += 1
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

    async def list_models(self, request: Request) -> Response:
        """Model Garden's model list: the cheap authenticated read of `backends check --probe`."""
        await self.record(request)
        denied = self._denied(request.headers, None)
        return denied or json_response(
            200, {"publisherModels": [{"name": "publishers/google/models/veo-3.1"}]}
        )

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
            if not isinstance(body, dict):
                raise invalid("Invalid JSON payload received.")
            unknown_fields(body, SCHEMA["body_fields"], "")
            instances = body.get("instances")
            if not isinstance(instances, list) or len(instances) != 1:
                raise invalid("instances must hold exactly one instance")
            check_parameters(body.get("parameters", {}))
            check_instance(model, instances[0], body.get("parameters", {}))
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
