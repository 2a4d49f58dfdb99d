"""xAI Grok Imagine: images (synchronous, base64) and video (a deferred request polled by id).

    grok/generate       POST /v1/images/generations  {model, prompt, n, response_format, aspect_ratio}
    grok/edit           POST /v1/images/edits        ... + image:{url, type} | images:[2-3] (data URIs)
    grok-video/generate POST /v1/videos/generations  -> {request_id}; GET /v1/videos/{id}: HTTP 202 with an
                        empty body while pending, else {status: pending|done|expired|failed, video:{url}}

An edit's output follows its first source's aspect ratio: `aspect_ratio` is sent only with 2-3 sources and
only when the caller asked for a ratio other than the route's default (`asked`); xAI documents that a
one-image edit must not set it. Refused before payment (`refusal`): more than 3 edit sources, sources
other than JPEG/PNG/WebP, and another ratio than the source's asked of a one-image edit.

`b64_json` may be bare base64 or a `data:` URI. A `block_reason` on an image answer, or `respect_moderation:
false` on a result, means the upstream blocked it: MODERATED, never delivered. xAI has no documented cancel
for video requests, so `cancel` only forgets the request. `options.image_resolution` ("1k" | "2k") is sent
as the images' `resolution` (unset: the upstream default, 1k)."""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from typing import Any

import httpx

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
from studio402.backends.hosted_io import data_uri, fetch_media, member
from studio402.backends.http_common import (
    decode_base64,
    error_text,
    final,
    json_object,
    parsed_json,
    send,
    status_failure,
)
from studio402.catalog import CATALOG
from studio402.media.sniff import sniff

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://api.x.ai/v1"
DEFAULT_MODELS = {
    "grok/generate": "grok-imagine-image",
    "grok/edit": "grok-imagine-image",
    "grok-video/generate": "grok-imagine-video",
}
_VIDEO_ROUTE = "grok-video/generate"
_EDIT_ROUTE = "grok/edit"
MAX_EDIT_IMAGES = 3  # docs.x.ai multi-image editing: "up to three source images" (our catalog takes 5)
SOURCE_MIMES = frozenset({"image/jpeg", "image/png", "image/webp"})  # ImageUrl in xAI's REST reference
_SAME_RATIO = 0.02  # |log(a/b)| under which two aspect ratios are the same (4032x3024 is 4:3)
_MODERATION_WORDS = ("moderat", "safety", "content policy", "content_policy")


class VideoStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    EXPIRED = "expired"
    FAILED = "failed"


class XaiBackend(UpstreamAdapter):
    probe_path = "models"  # GET /v1/models: `backends check --probe`
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = frozenset(DEFAULT_MODELS)
    unserved = "{name} does not serve {route}"
    gated = False

    def refusal(self, ask: Ask) -> str | None:
        """xAI's documented limits our catalog goes beyond: sources it cannot read, more than 3 edit sources,
        and a ratio asked of a one-image edit (the output keeps the source's)."""
        mimes = {i.mime for i in (*ask.inputs_at("images"), *ask.inputs_at("image"))} - {""}
        if mimes - SOURCE_MIMES:
            return f"xAI takes JPEG, PNG or WebP images, not {', '.join(sorted(mimes - SOURCE_MIMES))}"
        if ask.route_key != _EDIT_ROUTE:
            return None
        count = max(len(ask.inputs_at("images")), len(ask.params.get("images") or ()))
        if count > MAX_EDIT_IMAGES:
            return f"xAI edits take at most {MAX_EDIT_IMAGES} source images ({count} given)"
        if count == 1 and asked(ask, "aspect_ratio"):
            return _kept_ratio_refusal(ask)
        return None

    async def submit(self, job: BackendJob) -> Submitted:
        if job.route_key == _VIDEO_ROUTE:
            return await self._submit_video(job)
        return Submitted(None, await self._image(job))

    # -- images (synchronous) ------------------------------------------------------------------------------

    async def _image(self, job: BackendJob) -> Poll:
        body: dict[str, Any] = {
            "model": self._model(job),
            "prompt": job.params["prompt"],
            "n": 1,
            "response_format": "b64_json",
        }
        resolution = self._settings.options.get("image_resolution")
        if resolution:
            body["resolution"] = resolution
        images = [{"url": data_uri(m), "type": "image_url"} for m in job.inputs_at("images")]
        path = "images/edits" if images else "images/generations"
        # An edit follows its first source's ratio; xAI takes `aspect_ratio` only with several sources.
        if not images or (len(images) > 1 and asked(job, "aspect_ratio")):
            body["aspect_ratio"] = job.params.get("aspect_ratio", "1:1")
        if len(images) == 1:
            body["image"] = images[0]
        elif images:
            body["images"] = images
        answer = await self._create(path, json=body, headers=self._headers())
        if answer.get("block_reason"):  # moderation refused it: no image, whatever `data` holds
            raise BackendFailure(
                FailureCode.MODERATED,
                f"{self.name}: blocked by moderation ({str(answer['block_reason'])[:200]})",
                accepted=True,
            )
        data = answer.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise final(FailureCode.NO_MEDIA, f"{self.name}: the answer holds no image")
        return Poll(UpstreamStatus.SUCCEEDED, 100, (await self._image_output(data[0]),))

    async def _image_output(self, item: dict[str, Any]) -> Output:
        if item.get("respect_moderation") is False:
            raise BackendFailure(
                FailureCode.MODERATED, f"{self.name}: the image was blocked by moderation", accepted=True
            )
        if item.get("b64_json"):
            declared, data = _inline_image(str(item["b64_json"]))
            return Output(data, sniff(data) or declared or str(item.get("mime_type") or "image/jpeg"))
        if item.get("url"):
            return await fetch_media(self._client, str(item["url"]), what="the image")
        raise final(FailureCode.NO_MEDIA, f"{self.name}: the answer holds no image")

    # -- video (deferred) ----------------------------------------------------------------------------------

    async def _submit_video(self, job: BackendJob) -> Submitted:
        p = job.params
        body: dict[str, Any] = {
            "model": self._model(job),
            "prompt": p["prompt"],
            "duration": int(p.get("duration", 6)),
            "aspect_ratio": p.get("aspect_ratio", "16:9"),
            "resolution": p.get("resolution", "720p"),
        }
        first = job.inputs_at("image")
        if first:
            body["image"] = {"url": data_uri(first[0])}
        answer = await self._create("videos/generations", json=body, headers=self._headers())
        return Submitted(self._answer_id(answer.get("request_id"), "request_id"))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        resp = await send(
            self._client, "GET", f"videos/{upstream_id}", accepted=True, headers=self._headers()
        )
        if resp.status_code == 202 and not resp.content.strip():
            return Poll(UpstreamStatus.RUNNING)  # still pending: xAI answers 202 with no body
        if resp.is_error:
            raise self._failure(resp, accepted=True)
        body = json_object(resp, accepted=True)
        video = member(body, "video")
        status = body.get("status") or (VideoStatus.DONE if video.get("url") else VideoStatus.PENDING)
        progress = body.get("progress") if isinstance(body.get("progress"), int) else None
        if status == VideoStatus.DONE:
            return await self._video(video)
        if status == VideoStatus.PENDING:
            return Poll(UpstreamStatus.RUNNING, progress)
        if status == VideoStatus.EXPIRED:
            raise BackendFailure(
                FailureCode.EXPIRED, f"{self.name}: the video request expired", accepted=True
            )
        if status == VideoStatus.FAILED:
            raise self._job_failure(body.get("error"))
        log.warning("%s: unknown video status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING, progress)

    async def _video(self, video: dict[str, Any]) -> Poll:
        if video.get("respect_moderation") is False:
            raise BackendFailure(
                FailureCode.MODERATED, f"{self.name}: the video was blocked by moderation", accepted=True
            )
        return await self._delivered(video.get("url"), "done without a video", what="the video")

    def _job_failure(self, error: Any) -> BackendFailure:
        error = error if isinstance(error, dict) else {}
        text = f"{error.get('code') or ''} {error.get('message') or 'the video request failed'}".strip()
        code = FailureCode.MODERATED if _mentions_moderation(text) else FailureCode.UPSTREAM_ERROR
        return final(code, f"{self.name}: {text}")

    def _failure(self, resp: httpx.Response, *, accepted: bool) -> BackendFailure:
        """Errors come as {"error": {message, code}} or {"code", "error": "..."}."""
        moderated = resp.status_code in (400, 403, 422) and _mentions_moderation(
            error_text(resp) + _code(resp)
        )
        return status_failure(resp, accepted=accepted, code=FailureCode.MODERATED if moderated else None)

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        log.info("%s: no upstream cancel for video requests; %s is left to finish", self.name, upstream_id)


def asked(request: Ask | BackendJob, name: str) -> bool:
    """Whether the caller chose `name`. The canonical body fills the route's defaults, so a value equal to
    the default reads as not asked (an explicit default cannot be told apart): an edit then follows its
    source, which is what a caller who did not choose wants."""
    if name not in request.params:
        return False
    field = CATALOG.get(request.model, request.operation).input.model_fields.get(name)
    return field is None or request.params[name] != field.default


def _kept_ratio_refusal(ask: Ask) -> str | None:
    """A one-image edit keeps its source's ratio: another ratio asked for cannot be served."""
    source = ask.inputs_at("images")
    if not source or not source[0].width or not source[0].height:
        return None  # size unknown here: sent without a ratio, the output follows the source
    width, height = source[0].width, source[0].height
    wanted = str(ask.params["aspect_ratio"])
    w, h = (float(x) for x in wanted.split(":"))
    if abs(math.log((width / height) / (w / h))) <= _SAME_RATIO:
        return None
    return (
        f"an xAI edit of one image keeps its aspect ratio ({width}x{height}); aspect_ratio {wanted} "
        "needs 2 or 3 source images (or leave it out)"
    )


def _inline_image(text: str) -> tuple[str | None, bytes]:
    """(declared MIME, bytes) of a `b64_json`: bare base64 (the REST reference) or a `data:` URI (xAI's image
    guide shows one, xai_sdk splits on `base64,`). Either way the billed image is kept."""
    if not text.startswith("data:"):
        return None, decode_base64(text, "the image")
    head, _, payload = text.partition(",")
    mime = head[len("data:") :].split(";")[0].strip() or None
    return mime, decode_base64(payload, "the image")


def _code(resp: httpx.Response) -> str:
    body = parsed_json(resp)
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    return str((error.get("code") if isinstance(error, dict) else body.get("code")) or "")


def _mentions_moderation(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _MODERATION_WORDS)
