"""ByteDance Seedance 2.0 on BytePlus ModelArk content-generation tasks.

    POST   /contents/generations/tasks       {model, content:[...], ratio, resolution, duration, ...} -> {id}
    GET    /contents/generations/tasks/{id}  {status: queued|running|succeeded|failed|cancelled|expired,
                                              content:{video_url}, error:{code, message}}
    DELETE /contents/generations/tasks/{id}  cancels a queued task

`content` holds the prompt and the media with roles: keyframe mode sends `first_frame` / `last_frame`
images, reference mode `reference_image` / `reference_video` / `reference_audio`. Images go inline as data
URIs (the API takes them); videos and audio as our signed URLs. An exact pixel `resolution` of our schema is
sent as the nearest ratio + tier (the API has no pixel size). Refused before payment (`refusal`), so a chain
may fall back to a backend that can: `upscaleResolution: 4k` (the API has no upscale), and reference videos
or audio longer than 15 s in all (Seedance 2.0: "total duration max 15s" per kind, on ByteDance pages)."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import httpx

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    Ask,
    BackendFailure,
    BackendJob,
    FailureCode,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.hosted_io import inline_images, media_ref, member, task_failure
from studio402.backends.http_common import error_object, status_failure
from studio402.catalog.fields import MediaKind

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://ark.ap-southeast.bytepluses.com/api/v3"
TASKS = "contents/generations/tasks"
PRO_MODEL = "dreamina-seedance-2-0-260128"
FAST_MODEL = "dreamina-seedance-2-0-fast-260128"
DEFAULT_MODELS = {
    "seedance/t2v": PRO_MODEL,
    "seedance/i2v": PRO_MODEL,
    "seedance-fast/t2v": FAST_MODEL,
    "seedance-fast/i2v": FAST_MODEL,
}
# Our exact pixel sizes -> (ratio, resolution tier) of the API.
_PIXEL_SIZES = {
    "720x720": ("1:1", "720p"),
    "720x960": ("3:4", "720p"),
    "960x720": ("4:3", "720p"),
    "1280x720": ("16:9", "720p"),
    "720x1280": ("9:16", "720p"),
    "1280x540": ("21:9", "720p"),
}
MAX_REFERENCE_SECONDS = 15.0  # per kind: reference videos, reference audio
_MEDIA_TYPES = {MediaKind.IMAGE: "image_url", MediaKind.VIDEO: "video_url", MediaKind.AUDIO: "audio_url"}
_REFERENCE_ROLES = {
    MediaKind.IMAGE: "reference_image",
    MediaKind.VIDEO: "reference_video",
    MediaKind.AUDIO: "reference_audio",
}


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_WAITING = {TaskStatus.QUEUED: UpstreamStatus.QUEUED, TaskStatus.RUNNING: UpstreamStatus.RUNNING}


def is_moderation(code: str) -> bool:
    """Ark names its safety refusals `...SensitiveContentDetected` (input or output, text/image/video)."""
    return "Sensitive" in code or "RiskDetection" in code


class SeedanceBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = frozenset(DEFAULT_MODELS)
    unserved = "{name} does not serve {route}"
    gated = False
    probe_path = f"{TASKS}?page_num=1&page_size=1"  # the task list (the SDK's content_generation.tasks.list)

    def refusal(self, ask: Ask) -> str | None:
        if ask.params.get("upscaleResolution"):
            return f"BytePlus Seedance offers no {ask.params['upscaleResolution']} upscale"
        if ask.params.get("mode", "keyframe") != "reference":
            return None
        media = [*ask.inputs_at("urls"), *ask.inputs_at("audioUrls")]
        for kind in (MediaKind.VIDEO, MediaKind.AUDIO):
            total = sum(m.duration_s or 0.0 for m in media if m.kind is kind)
            if total > MAX_REFERENCE_SECONDS:
                return f"reference {kind} lasts {total:.1f} s in all; Seedance takes at most 15 s"
        return None

    def _body(self, job: BackendJob) -> dict[str, Any]:
        """The task creation body for a canonical Seedance request."""
        p = job.params
        model = self._model(job)
        reason = self.refusal(Ask.of_job(job))
        if reason is not None:  # checked before payment too; a submission never sends what Ark refuses
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: {reason}")
        ratio, resolution = _PIXEL_SIZES.get(
            str(p.get("resolution")), (p.get("aspectRatio", "16:9"), p.get("outputResolution", "720p"))
        )
        body: dict[str, Any] = {
            "model": model,
            "content": self._content(job),
            "ratio": ratio,
            "resolution": resolution,
            "duration": int(p.get("duration", 5)),
            "seed": job.seed,
            "camera_fixed": bool(p.get("camera_fixed", False)),
            "generate_audio": bool(p.get("generate_audio", False)),
            "watermark": bool(self._settings.options.get("watermark", False)),
        }
        return body

    def _content(self, job: BackendJob) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if job.params.get("prompt"):
            content.append({"type": "text", "text": job.params["prompt"]})
        keyframes = job.params.get("mode", "keyframe") == "keyframe"
        inline = inline_images(self._settings.options)
        for media in [*job.inputs_at("urls"), *job.inputs_at("audioUrls")]:
            kind = _MEDIA_TYPES[media.kind]
            if keyframes:
                role = "first_frame" if media.loc[-1] == 0 else "last_frame"
            else:
                role = _REFERENCE_ROLES[media.kind]
            content.append({"type": kind, kind: {"url": media_ref(media, inline=inline)}, "role": role})
        return content

    async def submit(self, job: BackendJob) -> Submitted:
        answer = await self._create(TASKS, json=self._body(job), headers=self._headers())
        return Submitted(self._answer_id(answer.get("id"), "task id"))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        body = await self._get_json(f"{TASKS}/{upstream_id}")
        status = str(body.get("status"))
        if status in _WAITING:
            return Poll(_WAITING[TaskStatus(status)])
        if status == TaskStatus.SUCCEEDED:
            video = member(body, "content").get("video_url")
            return await self._delivered(video, "succeeded without a video", what="the video")
        if status == TaskStatus.FAILED:
            raise task_failure(self.name, member(body, "error"), is_moderation)
        if status == TaskStatus.CANCELLED:
            raise BackendFailure(FailureCode.CANCELED, f"{self.name}: the task was cancelled", accepted=True)
        if status == TaskStatus.EXPIRED:
            raise BackendFailure(FailureCode.EXPIRED, f"{self.name}: the task expired", accepted=True)
        log.warning("%s: unknown task status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING)

    def _failure(self, resp: httpx.Response, *, accepted: bool) -> BackendFailure:
        moderated = is_moderation(str(error_object(resp).get("code") or ""))
        return status_failure(resp, accepted=accepted, code=FailureCode.MODERATED if moderated else None)

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        """Only a queued task can be cancelled; a running one finishes (and is billed) regardless."""
        resp = await self._cancel("DELETE", f"{TASKS}/{upstream_id}")
        if resp.is_error:
            log.info("%s: task %s not cancelled (HTTP %s)", self.name, upstream_id, resp.status_code)
