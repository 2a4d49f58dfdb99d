"""Alibaba Wan 2.6 on DashScope (Model Studio) asynchronous tasks, "legacy" protocol.

    POST /services/aigc/video-generation/video-synthesis   header X-DashScope-Async: enable (required)
         {model, input:{prompt, negative_prompt, img_url, audio_url}, parameters:{size | resolution, duration,
          prompt_extend, shot_type, watermark, seed}} -> {request_id, output:{task_id, task_status}}
    GET  /tasks/{task_id}         output.task_status: PENDING|RUNNING|SUCCEEDED|FAILED|CANCELED|UNKNOWN
    POST /tasks/{task_id}/cancel  PENDING tasks only

UNKNOWN comes with HTTP 200 for an id the account cannot see: terminal UPSTREAM_NOT_FOUND. Errors are
`{request_id, code, message}`: `DataInspectionFailed` is a moderation refusal, `Throttling*` comes with 429,
`Arrearage` means the operator's account is out of funds. The first frame goes inline as a data URI
(`options.inline_images = false` sends our signed URL), the soundtrack always as our signed URL.

Limits checked before anyone pays (`refusal`): Wan silently cuts a prompt after its model's limit (wan2.6:
1,500 characters; wan2.5: 2,000; earlier: 800) and a negative prompt after 500, so longer ones are refused;
the first frame must be JPEG/PNG/BMP/WEBP, 360-2000 px per side, at most 10 MB: inline frames out of range
are resized (ratio kept) and re-encoded, a frame sent by URL must already fit."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

import httpx
from PIL import Image

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    Ask,
    BackendFailure,
    BackendJob,
    FailureCode,
    MediaInput,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.hosted_io import inline_images, media_ref, member, task_failure
from studio402.backends.http_common import encode_base64, final, parsed_json, status_failure, upstream_model
from studio402.catalog.base import InputFacts
from studio402.media.image import encode_image, load_image

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
SYNTHESIS = "services/aigc/video-generation/video-synthesis"
ASYNC_HEADER = "X-DashScope-Async"
DEFAULT_MODELS = {"wan-2.6/t2v": "wan2.6-t2v", "wan-2.6/i2v": "wan2.6-i2v"}
MAX_SEED = 2_147_483_647
# Prompt limits per model family, in characters (Alibaba's Wan API reference); longer ones are cut silently.
PROMPT_LIMITS = (("wan2.6", 1500), ("wan2.5", 2000))
DEFAULT_PROMPT_LIMIT = 800  # wan2.2 / wan2.1
NEGATIVE_PROMPT_LIMIT = 500
FRAME_MIN_SIDE, FRAME_MAX_SIDE = 360, 2000
FRAME_MAX_BYTES = 10 * 1024 * 1024
FRAME_MIMES = frozenset({"image/jpeg", "image/png", "image/bmp", "image/webp"})
_MODERATION_CODES = frozenset({"DataInspectionFailed", "DataInspection", "IPInfringementSuspect"})
_CODE_FAILURES = {
    "Arrearage": FailureCode.UNAVAILABLE,
    "InvalidApiKey": FailureCode.AUTH,
    "Throttling": FailureCode.RATE_LIMITED,
}


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"


_WAITING = {
    TaskStatus.PENDING: UpstreamStatus.QUEUED,
    TaskStatus.RUNNING: UpstreamStatus.RUNNING,
    TaskStatus.SUSPENDED: UpstreamStatus.QUEUED,
}


def is_moderation(code: str) -> bool:
    return code in _MODERATION_CODES


def code_failure(code: str) -> FailureCode | None:
    """Our code for a DashScope error code (`Throttling.RateQuota` is a throttling)."""
    if is_moderation(code):
        return FailureCode.MODERATED
    return _CODE_FAILURES.get(code.split(".", 1)[0])


def prompt_limit(model: str) -> int:
    return next((n for family, n in PROMPT_LIMITS if model.startswith(family)), DEFAULT_PROMPT_LIMIT)


def frame_fits(width: int, height: int, size: int, mime: str) -> bool:
    sides_ok = FRAME_MIN_SIDE <= min(width, height) and max(width, height) <= FRAME_MAX_SIDE
    return sides_ok and size <= FRAME_MAX_BYTES and mime in FRAME_MIMES


def frame_scale(width: int, height: int) -> float | None:
    """The factor bringing both sides within 360-2000 px (1.0 when they are), None when no factor can."""
    if max(width, height) / min(width, height) > FRAME_MAX_SIDE / FRAME_MIN_SIDE:
        return None
    if max(width, height) > FRAME_MAX_SIDE:
        return FRAME_MAX_SIDE / max(width, height)
    return max(1.0, FRAME_MIN_SIDE / min(width, height))


def frame_refusal(frame: InputFacts, *, inline: bool) -> str | None:
    if frame.width is None or frame.height is None:
        return None  # unknown before payment: the upstream decides
    if frame_scale(frame.width, frame.height) is None:
        return f"the first frame is {frame.width}x{frame.height}: Wan needs 360-2000 px per side"
    if not inline and not frame_fits(frame.width, frame.height, frame.size, frame.mime):
        return "a first frame sent by URL must be JPEG/PNG/BMP/WEBP, 360-2000 px per side and at most 10 MB"
    return None


def fit_frame(data: bytes) -> tuple[bytes, str]:
    """The frame within Wan's limits: resized with its ratio kept, PNG (JPEG when PNG is over 10 MB)."""
    img = load_image(data)
    scale = frame_scale(*img.size)
    if scale is None:
        raise BackendFailure(FailureCode.UNAVAILABLE, "no scale puts the first frame within 360-2000 px")
    if scale != 1.0:
        size = tuple(min(FRAME_MAX_SIDE, max(FRAME_MIN_SIDE, round(s * scale))) for s in img.size)
        img = img.resize((size[0], size[1]), Image.Resampling.LANCZOS)
    png = encode_image(img, "png")
    if len(png) <= FRAME_MAX_BYTES:
        return png, "image/png"
    return encode_image(img.convert("RGB"), "jpeg", quality=90), "image/jpeg"


async def frame_ref(media: MediaInput, *, inline: bool) -> str:
    """The first frame as Wan takes it: inline (resized if out of range) or our signed URL."""
    size = (media.width or 0, media.height or 0)
    if not inline or frame_fits(*size, len(media.data), media.mime):
        return media_ref(media, inline=inline)
    data, mime = await asyncio.to_thread(fit_frame, media.data)
    return f"data:{mime};base64,{encode_base64(data)}"


class WanBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = frozenset(DEFAULT_MODELS)
    unserved = "{name} does not serve {route}"
    gated = False
    probe_path = "tasks?page_no=1&page_size=1"  # the task list (the SDK's VideoSynthesis.list)

    def refusal(self, ask: Ask) -> str | None:
        model = upstream_model(self._settings, ask.route_key, self.default_models)
        if model is None:
            return None  # not ours to serve: the submission refuses it
        limit = prompt_limit(model)
        if len(str(ask.params.get("prompt") or "")) > limit:
            return f"{model} takes prompts of at most {limit} characters (it cuts longer ones)"
        if len(str(ask.params.get("negativePrompt") or "")) > NEGATIVE_PROMPT_LIMIT:
            return f"{model} takes negative prompts of at most {NEGATIVE_PROMPT_LIMIT} characters"
        inline = inline_images(self._settings.options)
        return next(filter(None, (frame_refusal(f, inline=inline) for f in ask.inputs_at("image"))), None)

    async def _body(self, job: BackendJob) -> dict[str, Any]:
        p = job.params
        model = self._model(job)
        inputs: dict[str, Any] = {"prompt": p["prompt"]}
        if p.get("negativePrompt"):
            inputs["negative_prompt"] = p["negativePrompt"]
        for media in job.inputs_at("image")[:1]:
            inputs["img_url"] = await frame_ref(media, inline=inline_images(self._settings.options))
        for media in job.inputs_at("audioUrl")[:1]:
            inputs["audio_url"] = media.url
        params: dict[str, Any] = {
            "duration": int(p.get("duration", 5)),
            "prompt_extend": bool(p.get("enablePromptExpansion", True)),
            "shot_type": "multi" if p.get("multiShots") else "single",
            "watermark": bool(self._settings.options.get("watermark", False)),
            "seed": job.seed % (MAX_SEED + 1),
        }
        if job.operation == "i2v":
            params["resolution"] = str(p.get("resolution", "720p")).upper()
        else:
            params["size"] = p.get("size", "1280*720")
        return {"model": model, "input": inputs, "parameters": params}

    async def submit(self, job: BackendJob) -> Submitted:
        headers = {**self._headers(), ASYNC_HEADER: "enable"}
        answer = await self._create(SYNTHESIS, json=await self._body(job), headers=headers)
        return Submitted(self._answer_id(member(answer, "output").get("task_id"), "task_id"))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        output = member(await self._get_json(f"tasks/{upstream_id}"), "output")
        status = str(output.get("task_status"))
        if status in _WAITING:
            return Poll(_WAITING[TaskStatus(status)])
        if status == TaskStatus.SUCCEEDED:
            video = output.get("video_url")
            return await self._delivered(video, "succeeded without a video", what="the video")
        return self._ended(status, output, upstream_id)

    def _ended(self, status: str, output: dict[str, Any], upstream_id: str) -> Poll:
        if status == TaskStatus.FAILED:
            raise task_failure(self.name, output, is_moderation)
        if status == TaskStatus.CANCELED:
            raise BackendFailure(FailureCode.CANCELED, f"{self.name}: the task was canceled", accepted=True)
        if status == TaskStatus.UNKNOWN:
            raise final(
                FailureCode.NOT_FOUND,
                f"{self.name}: task {upstream_id} is unknown (expired or in another region)",
            )
        log.warning("%s: unknown task status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING)

    def _failure(self, resp: httpx.Response, *, accepted: bool) -> BackendFailure:
        body = parsed_json(resp)
        code = str(body.get("code") or "") if isinstance(body, dict) else ""
        return status_failure(resp, accepted=accepted, code=code_failure(code))

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        """Only a PENDING task can be canceled; a running one finishes regardless."""
        resp = await self._cancel("POST", f"tasks/{upstream_id}/cancel")
        if resp.is_error:
            log.info("%s: task %s not canceled (HTTP %s)", self.name, upstream_id, resp.status_code)
