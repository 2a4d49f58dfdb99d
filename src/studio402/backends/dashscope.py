"""Alibaba Wan 2.6 on DashScope (Model Studio) asynchronous tasks, "legacy" protocol.

    POST /services/aigc/video-generation/video-synthesis   header X-DashScope-Async: enable (required)
         {model, input:{prompt, negative_prompt, img_url, audio_url}, parameters:{size | resolution, duration,
          prompt_extend, shot_type, watermark, seed}} -> {request_id, output:{task_id, task_status}}
    GET  /tasks/{task_id}         output.task_status: PENDING|RUNNING|SUCCEEDED|FAILED|CANCELED|UNKNOWN
    POST /tasks/{task_id}/cancel  PENDING tasks only

UNKNOWN comes with HTTP 200 for an id the account cannot see: terminal UPSTREAM_NOT_FOUND. Errors are
`{request_id, code, message}`: `DataInspectionFailed` is a moderation refusal, `Throttling*` comes with 429,
`Arrearage` means the operator's account is out of funds. The first frame goes inline as a data URI
(`options.inline_images = false` sends our signed URL), the soundtrack always as our signed URL."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import httpx

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import BackendFailure, BackendJob, FailureCode, Poll, Submitted, UpstreamStatus
from studio402.backends.hosted_io import inline_images, media_ref, member, task_failure
from studio402.backends.http_common import final, parsed_json, status_failure

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
SYNTHESIS = "services/aigc/video-generation/video-synthesis"
ASYNC_HEADER = "X-DashScope-Async"
DEFAULT_MODELS = {"wan-2.6/t2v": "wan2.6-t2v", "wan-2.6/i2v": "wan2.6-i2v"}
MAX_SEED = 2_147_483_647
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


class WanBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = frozenset(DEFAULT_MODELS)
    unserved = "{name} does not serve {route}"
    gated = False

    def _body(self, job: BackendJob) -> dict[str, Any]:
        p = job.params
        model = self._model(job)
        inputs: dict[str, Any] = {"prompt": p["prompt"]}
        if p.get("negativePrompt"):
            inputs["negative_prompt"] = p["negativePrompt"]
        for media in job.inputs_at("image")[:1]:
            inputs["img_url"] = media_ref(media, inline=inline_images(self._settings.options))
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
        answer = await self._create(SYNTHESIS, json=self._body(job), headers=headers)
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
