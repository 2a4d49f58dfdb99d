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

from studio402.backends.base import BackendFailure, BackendJob, FailureCode, Poll, Submitted, UpstreamStatus
from studio402.backends.hosted_io import fetch_media, final, media_ref, member, new_client
from studio402.backends.http_common import (
    api_key,
    json_object,
    send,
    status_failure,
    upstream_model,
)
from studio402.config import ProviderSettings

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


def code_failure(code: str) -> FailureCode | None:
    """Our code for a DashScope error code (`Throttling.RateQuota` is a throttling)."""
    if code in _MODERATION_CODES:
        return FailureCode.MODERATED
    return _CODE_FAILURES.get(code.split(".", 1)[0])


class WanBackend:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self._settings = settings
        self._client = new_client(settings, DEFAULT_BASE)
        self._inline = bool(settings.options.get("inline_images", True))

    @classmethod
    def from_settings(cls, name: str, settings: ProviderSettings) -> WanBackend:
        return cls(name, settings)

    def missing_settings(self) -> list[str]:
        return [] if api_key(self._settings) else ["api_key"]

    def supports(self, route_key: str) -> bool:
        return self._settings.enabled and route_key in DEFAULT_MODELS

    def _headers(self) -> dict[str, str]:
        key = api_key(self._settings)
        if not key:
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: no api_key configured")
        return {"Authorization": f"Bearer {key}"}

    def _body(self, job: BackendJob) -> dict[str, Any]:
        p = job.params
        model = upstream_model(self._settings, job.route_key, DEFAULT_MODELS)
        if model is None or job.route_key not in DEFAULT_MODELS:
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name} does not serve {job.route_key}")
        inputs: dict[str, Any] = {"prompt": p["prompt"]}
        if p.get("negativePrompt"):
            inputs["negative_prompt"] = p["negativePrompt"]
        for media in job.inputs_at("image")[:1]:
            inputs["img_url"] = media_ref(media, inline=self._inline)
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
        resp = await send(
            self._client, "POST", SYNTHESIS, creates=True, json=self._body(job), headers=headers
        )
        if resp.is_error:
            raise self._failure(resp, accepted=False)
        output = json_object(resp, accepted=True, retryable=False).get("output")
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise final(FailureCode.UPSTREAM_ERROR, f"{self.name}: no task_id in the answer")
        return Submitted(task_id)

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        resp = await send(self._client, "GET", f"tasks/{upstream_id}", accepted=True, headers=self._headers())
        if resp.is_error:
            raise self._failure(resp, accepted=True)
        output = member(json_object(resp, accepted=True), "output")
        status = str(output.get("task_status"))
        if status in _WAITING:
            return Poll(_WAITING[TaskStatus(status)])
        if status == TaskStatus.SUCCEEDED:
            if not output.get("video_url"):
                raise final(FailureCode.NO_MEDIA, f"{self.name}: succeeded without a video")
            return Poll(
                UpstreamStatus.SUCCEEDED,
                100,
                (await fetch_media(self._client, str(output["video_url"]), what="the video"),),
            )
        return self._ended(status, output, upstream_id)

    def _ended(self, status: str, output: dict[str, Any], upstream_id: str) -> Poll:
        if status == TaskStatus.FAILED:
            code = str(output.get("code") or "")
            failure = code_failure(code)
            text = f"{self.name}: {code} {output.get('message') or 'the task failed'}".strip()
            raise final(
                FailureCode.MODERATED if failure is FailureCode.MODERATED else FailureCode.UPSTREAM_ERROR,
                text,
            )
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
        try:
            body = resp.json()
        except ValueError:
            body = None
        code = str(body.get("code") or "") if isinstance(body, dict) else ""
        return status_failure(resp, accepted=accepted, code=code_failure(code))

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        """Only a PENDING task can be canceled; a running one finishes regardless."""
        resp = await send(
            self._client, "POST", f"tasks/{upstream_id}/cancel", accepted=True, headers=self._headers()
        )
        if resp.status_code >= 500:
            raise self._failure(resp, accepted=True)
        if resp.is_error:
            log.info("%s: task %s not canceled (HTTP %s)", self.name, upstream_id, resp.status_code)

    async def aclose(self) -> None:
        await self._client.aclose()
