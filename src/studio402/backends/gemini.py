"""Gemini API image adapter: nano-banana -> `gemini-3.1-flash-image`, nano-banana-pro -> `gemini-3-pro-image`
(override per route or model in `models`).

`POST /{v1beta|v1}/models/{model}:generateContent` with `x-goog-api-key` (`options.api_version`, default
v1beta); synchronous, the image is a base64 `inlineData` part. An edit sends `aspectRatio` only when the
caller asked for a ratio other than the route's default, so the output follows the input image
(`asked_aspect`). An HTTP 200 may carry no image; per reason:

    moderated  any `promptFeedback.blockReason` (the prompt was refused), or finishReason SAFETY,
               PROHIBITED_CONTENT, BLOCKLIST, SPII, IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT, RECITATION,
               IMAGE_RECITATION (a policy refusal of the prompt or of the output: asking again will not help)
    no_media   NO_IMAGE, IMAGE_OTHER, OTHER, MAX_TOKENS, STOP without an image, or anything else (the model
               just did not draw)

Errors are `{"error": {"code", "status", "message", "details"}}`: RESOURCE_EXHAUSTED (429) is rate_limited,
waiting the `Retry-After` header or the RetryInfo `retryDelay`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    BackendFailure,
    BackendJob,
    FailureCode,
    Output,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.http_common import (
    DETAIL_LIMIT,
    decode_base64,
    encode_base64,
    error_object,
    error_text,
    final,
    json_object,
    media_inputs,
    retry_after,
    send,
    status_failure,
    wait_seconds,
)
from studio402.catalog import CATALOG
from studio402.config import ProviderSettings
from studio402.errors import ConfigError

DEFAULT_BASE = "https://generativelanguage.googleapis.com"
API_VERSIONS = ("v1beta", "v1")
HEADER_KEY = "x-goog-api-key"
DEFAULT_MODELS: Mapping[str, str] = {
    "nano-banana": "gemini-3.1-flash-image",
    "nano-banana-pro": "gemini-3-pro-image",
}
ROUTES = frozenset(f"{m}/{op}" for m in DEFAULT_MODELS for op in ("generate", "edit"))
MODERATED_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def asked_aspect(job: BackendJob) -> str | None:
    """The aspect ratio to send, or None to let the output follow the input image.

    The canonical body fills the route's defaults, so an absent ratio and the default ("1:1") look the same.
    Our choice: on an edit the default counts as not asked (Gemini then keeps the input image's ratio, as
    its image guide documents; sending "1:1" made every edit square); a caller who wants a square edit of a
    non-square image can say so in the prompt. Generations have no input to follow: the value is sent."""
    aspect = job.params.get("aspectRatio")
    if aspect is None or job.operation != "edit":
        return None if aspect is None else str(aspect)
    field = CATALOG.get(job.model, job.operation).input.model_fields.get("aspectRatio")
    return None if field is not None and aspect == field.default else str(aspect)


def request_body(job: BackendJob) -> dict[str, Any]:
    p = job.params
    parts: list[dict[str, Any]] = [{"text": p["prompt"]}]
    for image in media_inputs(job, "images"):
        parts.append({"inlineData": {"mimeType": image.mime, "data": encode_base64(image.data)}})
    image_config: dict[str, Any] = {"imageSize": p.get("imageSize", "1K")}
    aspect = asked_aspect(job)
    if aspect is not None:
        image_config = {"aspectRatio": aspect, **image_config}
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config}
    if "thinkingLevel" in p:
        config["thinkingConfig"] = {"thinkingLevel": str(p["thinkingLevel"]).upper()}
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def _parts(candidate: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _image(parts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The last image that is not a thought (Gemini 3 may show interim images while thinking)."""
    images = [p.get("inlineData") for p in parts if not p.get("thought")]
    found = [i for i in images if isinstance(i, dict) and str(i.get("mimeType", "")).startswith("image/")]
    return found[-1] if found else None


def image_output(body: Mapping[str, Any]) -> Output:
    """The image of a 200 answer, or the failure its reason calls for (module docstring)."""
    feedback = body.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise final(FailureCode.MODERATED, f"the prompt was blocked ({feedback['blockReason']})")
    candidates = [c for c in body.get("candidates") or [] if isinstance(c, dict)]
    candidate = candidates[0] if candidates else {}
    image = _image(_parts(candidate))
    if image is not None:
        return Output(decode_base64(image.get("data"), "inlineData"), str(image["mimeType"]))
    reason = str(candidate.get("finishReason") or "no candidate")
    text = " ".join(str(p["text"]) for p in _parts(candidate) if p.get("text") and not p.get("thought"))
    detail = f"no image ({reason}){': ' + text if text else ''}"[:DETAIL_LIMIT]
    code = FailureCode.MODERATED if reason in MODERATED_REASONS else FailureCode.NO_MEDIA
    raise final(code, detail)


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            return wait_seconds(str(detail.get("retryDelay", "")).removesuffix("s"))
    return None


def google_failure(resp: httpx.Response, *, accepted: bool) -> BackendFailure:
    """The Google error envelope (Gemini API and Agent Platform) -> a failure."""
    error = error_object(resp)
    status = error.get("status")
    reasons = {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
    if "API_KEY_INVALID" in reasons or status in _AUTH_STATUSES:
        return status_failure(resp, accepted=accepted, code=FailureCode.AUTH)
    if resp.status_code == 429 or status == "RESOURCE_EXHAUSTED":
        wait = retry_after(resp.headers)
        return BackendFailure(
            FailureCode.RATE_LIMITED,
            error_text(resp),
            accepted=accepted,
            retry_after=wait if wait is not None else _retry_delay(error),
        )
    if status == "FAILED_PRECONDITION":  # e.g. billing or region not enabled: the operator's setup
        return status_failure(resp, accepted=accepted, code=FailureCode.UNAVAILABLE)
    return status_failure(resp, accepted=accepted)


class GeminiImageBackend(UpstreamAdapter):
    probe_path = "v1beta/models?pageSize=1"  # list models: `backends check --probe`
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = ROUTES
    auth_header = HEADER_KEY
    auth_scheme = ""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self._version = str(settings.options.get("api_version", API_VERSIONS[0]))
        if self._version not in API_VERSIONS:
            raise ConfigError(f"backend {name}: options.api_version must be one of {', '.join(API_VERSIONS)}")
        super().__init__(name, settings)

    def url(self, model: str) -> str:
        return f"{self._version}/models/{model}:generateContent"

    async def submit(self, job: BackendJob) -> Submitted:
        model = self._model(job)
        resp = await send(
            self._client,
            "POST",
            self.url(model),
            creates=True,
            json=request_body(job),
            headers=self._headers(),
        )
        if resp.status_code != 200:
            raise google_failure(resp, accepted=False)
        body = json_object(resp, accepted=True, retryable=False)
        return Submitted(None, result=Poll(UpstreamStatus.SUCCEEDED, 100, (image_output(body),)))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        raise final(FailureCode.UPSTREAM_ERROR, "generateContent has no jobs to poll")

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None  # synchronous: nothing runs upstream once we stopped waiting
