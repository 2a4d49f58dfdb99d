"""OpenAI Images API adapter (gpt-image-1.5, gpt-image-2): synchronous, results as base64.

generate: `POST /images/generations` (JSON); edit: `POST /images/edits` (multipart, one `image[]` part per
input, `input_fidelity` only for gpt-image-1.5: "for gpt-image-2, omit this parameter"; no `moderation`, which
only generations take: an edit asking for `moderation: low` is refused before payment). A 400 with code
`moderation_blocked` is `moderated`. gpt-image-2 can take minutes: `timeout_seconds` bounds the call, and an
answer lost after sending is never resubmitted (see http_common)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    Ask,
    BackendFailure,
    BackendJob,
    FailureCode,
    Output,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.http_common import (
    Part,
    decode_base64,
    final,
    form_parts,
    json_object,
    media_inputs,
    send,
)
from studio402.backends.openai_common import DEFAULT_BASE, PROBE_PATH, auth_headers, openai_failure

DEFAULT_MODELS: Mapping[str, str] = {"gpt-image-1.5": "gpt-image-1.5", "gpt-image-2": "gpt-image-2"}
ROUTES = frozenset(f"{m}/{op}" for m in DEFAULT_MODELS for op in ("generate", "edit"))
GENERATIONS = "images/generations"
EDITS = "images/edits"
_KNOBS = ("quality", "size", "background", "output_format", "moderation")
_EDIT_KNOBS = ("quality", "size", "background", "output_format")  # the SDK's ImageEditParams: no moderation
DEFAULT_MODERATION = "auto"
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def request_fields(job: BackendJob, model: str) -> dict[str, Any]:
    """Our canonical body -> the upstream's fields (the same names; defaults are already filled in)."""
    fields: dict[str, Any] = {"model": model, "prompt": job.params["prompt"], "n": 1}
    knobs = _EDIT_KNOBS if job.operation == "edit" else _KNOBS
    fields.update({k: job.params[k] for k in knobs if k in job.params})
    if job.operation == "edit" and job.model == "gpt-image-1.5" and "input_fidelity" in job.params:
        fields["input_fidelity"] = job.params["input_fidelity"]
    return fields


def edit_parts(job: BackendJob, model: str) -> list[Part]:
    images = media_inputs(job, "images")
    if not images:
        raise BackendFailure(FailureCode.INVALID_REQUEST, "an edit needs at least one image", retryable=False)
    parts = form_parts(request_fields(job, model))
    for i, image in enumerate(images):
        parts.append(("image[]", (f"image_{i}.{_EXT.get(image.mime, 'png')}", image.data, image.mime)))
    return parts


def first_image(body: Mapping[str, Any], params: Mapping[str, Any]) -> Output:
    data = body.get("data")
    item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
    if item is None or not item.get("b64_json"):
        raise final(FailureCode.NO_MEDIA, "the upstream answered without an image")
    fmt = str(body.get("output_format") or params.get("output_format") or "png")
    return Output(decode_base64(item["b64_json"], "b64_json"), f"image/{fmt}")


class OpenAIImagesBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = ROUTES
    probe_path = PROBE_PATH

    def _headers(self) -> dict[str, str]:
        return auth_headers(self._settings)

    def refusal(self, ask: Ask) -> str | None:
        moderation = ask.params.get("moderation", DEFAULT_MODERATION)
        if ask.operation == "edit" and moderation != DEFAULT_MODERATION:
            return f"OpenAI image edits have no moderation setting (asked: {moderation})"
        return None

    async def submit(self, job: BackendJob) -> Submitted:
        model, headers = self._model(job), auth_headers(self._settings)
        if job.operation == "edit":
            resp = await send(
                self._client, "POST", EDITS, creates=True, headers=headers, files=edit_parts(job, model)
            )
        else:
            resp = await send(
                self._client,
                "POST",
                GENERATIONS,
                creates=True,
                headers=headers,
                json=request_fields(job, model),
            )
        if resp.status_code != 200:
            raise openai_failure(resp, accepted=False)
        body = json_object(resp, accepted=True, retryable=False)
        return Submitted(None, result=Poll(UpstreamStatus.SUCCEEDED, 100, (first_image(body, job.params),)))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        raise final(FailureCode.UPSTREAM_ERROR, "the OpenAI Images API has no jobs to poll")

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None  # synchronous: nothing runs upstream once we stopped waiting
