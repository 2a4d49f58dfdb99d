"""xAI Grok Imagine: images (synchronous, base64) and video (a deferred request polled by id).

    grok/generate       POST /v1/images/generations  {model, prompt, n, response_format, aspect_ratio}
    grok/edit           POST /v1/images/edits        ... + image:{url, type} | images:[...] (data URIs)
    grok-video/generate POST /v1/videos/generations  -> {request_id}; GET /v1/videos/{id}: HTTP 202 with an
                        empty body while pending, else {status: pending|done|expired|failed, video:{url}}

`respect_moderation: false` on a result means the upstream blocked it: MODERATED, never delivered. xAI has
no documented cancel for video requests, so `cancel` only forgets the request. `options.image_resolution`
("1k" | "2k") is sent as the images' `resolution` (unset: the upstream default, 1k)."""

from __future__ import annotations

import logging
from enum import StrEnum
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
from studio402.media.sniff import sniff

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://api.x.ai/v1"
DEFAULT_MODELS = {
    "grok/generate": "grok-imagine-image",
    "grok/edit": "grok-imagine-image",
    "grok-video/generate": "grok-imagine-video",
}
_VIDEO_ROUTE = "grok-video/generate"
_MODERATION_WORDS = ("moderat", "safety", "content policy", "content_policy")


class VideoStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    EXPIRED = "expired"
    FAILED = "failed"


class XaiBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = frozenset(DEFAULT_MODELS)
    unserved = "{name} does not serve {route}"
    gated = False

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
            "aspect_ratio": job.params.get("aspect_ratio", "1:1"),
        }
        resolution = self._settings.options.get("image_resolution")
        if resolution:
            body["resolution"] = resolution
        images = [{"url": data_uri(m), "type": "image_url"} for m in job.inputs_at("images")]
        path = "images/edits" if images else "images/generations"
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
