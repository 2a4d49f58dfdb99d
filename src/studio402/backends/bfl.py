"""Black Forest Labs adapter: FLUX.2 [pro] / [max] (generate and edit on the same endpoint).

    submit  POST /v1/{flux-2-pro|flux-2-max} with `x-key`: prompt, width/height (aspect ratio x MP, multiples
            of 16, each side at most 2048: see `bfl_size`), seed, safety_tolerance, output_format
            (jpg -> jpeg), input_image..input_image_8 (base64)
            -> {id, polling_url}; the polling URL (maybe a regional host) is the persisted upstream id
    poll    GET {polling_url} with `x-key`: Pending | Ready | Request Moderated | Content Moderated | Error |
            Task not found (retried a bounded number of times, then upstream_not_found); on Ready,
            `result.sample` (a signed URL valid ~10 min) is downloaded at once, without our key

The key is only sent to hosts we trust: the base URL's host, `*.bfl.ai`, and `options.polling_hosts`. BFL has
no cancel. `output_quality` and `prompt_upsampling` of our schema have no FLUX.2 [pro]/[max] field."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

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
from studio402.backends.dimensions import geometry
from studio402.backends.http_common import (
    DETAIL_LIMIT,
    download,
    encode_base64,
    final,
    json_object,
    media_inputs,
    parsed_json,
    send,
    status_failure,
    wait_seconds,
)
from studio402.catalog import CATALOG
from studio402.config import ProviderSettings

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://api.bfl.ai"
HEADER_KEY = "x-key"
DEFAULT_MODELS: Mapping[str, str] = {"flux-2-pro": "flux-2-pro", "flux-2-max": "flux-2-max"}  # endpoint names
ROUTES = frozenset(f"{m}/{op}" for m in DEFAULT_MODELS for op in ("generate", "edit"))
MAX_INPUT_IMAGES = 8  # input_image, input_image_2 .. input_image_8
TRUSTED_DOMAIN = "bfl.ai"
# BFL: "max 4 MP (e.g. 2048 x 2048)", sides multiples of 16. It names no per-side limit, but 2048 x 2048 is
# its largest example and integrators validate 2048 per side; 4 MP at 16:9 would be 2672 x 1504.
MAX_SIDE = 2048
MAX_PIXELS = 2048 * 2048
SIDE_STEP = 16
_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}


class TaskStatus(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    REQUEST_MODERATED = "Request Moderated"
    CONTENT_MODERATED = "Content Moderated"
    ERROR = "Error"
    NOT_FOUND = "Task not found"


def input_field(index: int) -> str:
    return "input_image" if index == 0 else f"input_image_{index + 1}"


def bfl_size(width: int, height: int) -> tuple[int, int]:
    """The size BFL takes: scaled down (never up) to at most MAX_SIDE per side and MAX_PIXELS in all, keeping
    the ratio; multiples of SIDE_STEP rounded down so the limits hold."""
    scale = min(1.0, MAX_SIDE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))
    if scale == 1.0:
        return width, height
    return _step_down(width * scale), _step_down(height * scale)


def _step_down(side: float) -> int:
    return max(SIDE_STEP, int(side) // SIDE_STEP * SIDE_STEP)


def request_body(job: BackendJob) -> dict[str, Any]:
    p = job.params
    geo = geometry(CATALOG.get(job.model, job.operation), p)
    width, height = bfl_size(geo.width, geo.height)
    body: dict[str, Any] = {
        "prompt": p["prompt"],
        "width": width,
        "height": height,
        "seed": job.seed,
        "safety_tolerance": p.get("safety_tolerance", 2),
        "output_format": _FORMATS[str(p.get("output_format", "jpg"))],
    }
    images = media_inputs(job, "images")
    if len(images) > MAX_INPUT_IMAGES:  # FLUX.2 [max] on our catalog takes 10: another backend may serve it
        raise BackendFailure(FailureCode.UNAVAILABLE, f"BFL takes at most {MAX_INPUT_IMAGES} input images")
    for i, image in enumerate(images):
        body[input_field(i)] = encode_base64(image.data)
    return body


def _progress(task: Mapping[str, Any]) -> int | None:
    value = task.get("progress")
    if not isinstance(value, int | float):
        return None
    percent = value * 100 if value <= 1 else value  # seen both as a fraction and as a percentage
    return max(0, min(100, round(percent)))


def bfl_failure(resp: httpx.Response, *, accepted: bool) -> BackendFailure:
    failure = status_failure(resp, accepted=accepted)
    if resp.status_code == 429 and failure.retry_after is None:  # body {"retry_after": 5} (skill doc)
        body = parsed_json(resp)
        failure.retry_after = wait_seconds(body.get("retry_after")) if isinstance(body, dict) else None
    return failure


class BflBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = ROUTES
    auth_header = HEADER_KEY
    auth_scheme = ""
    probe_path = "v1/credits"  # the account's credits (BFL OpenAPI: GET /v1/credits)

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        extra = settings.options.get("polling_hosts") or []
        self._trusted = {self._client.base_url.host, *(str(h).lower() for h in extra)}

    def trusted(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        ok_host = host in self._trusted or host == TRUSTED_DOMAIN or host.endswith("." + TRUSTED_DOMAIN)
        return ok_host and parts.scheme in ("https", self._client.base_url.scheme)

    def refusal(self, ask: Ask) -> str | None:
        count = len(ask.inputs_at("images"))
        if count > MAX_INPUT_IMAGES:  # FLUX.2 [max] on our catalog takes 10
            return f"BFL takes at most {MAX_INPUT_IMAGES} input images ({count} given)"
        return None

    async def submit(self, job: BackendJob) -> Submitted:
        endpoint = self._model(job)
        resp = await send(
            self._client,
            "POST",
            f"v1/{endpoint}",
            creates=True,
            json=request_body(job),
            headers=self._headers(),
        )
        if resp.status_code != 200:
            raise bfl_failure(resp, accepted=False)
        task = json_object(resp, accepted=True, retryable=False)
        url = task.get("polling_url") or (
            f"{self._client.base_url}v1/get_result?id={quote(str(task['id']))}" if task.get("id") else None
        )
        if not isinstance(url, str) or not self.trusted(url):
            raise final(FailureCode.UPSTREAM_ERROR, f"unusable polling_url {url!r}")
        return Submitted(url)

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        if not self.trusted(upstream_id):  # never send our key to a host we do not know
            raise final(FailureCode.UPSTREAM_ERROR, "the polling URL is on an untrusted host")
        resp = await send(self._client, "GET", upstream_id, accepted=True, headers=self._headers())
        if resp.status_code != 200:
            raise bfl_failure(resp, accepted=True)
        task = json_object(resp, accepted=True)
        return await self._task_poll(job, upstream_id, task)

    async def _task_poll(self, job: BackendJob, upstream_id: str, task: Mapping[str, Any]) -> Poll:
        status = task.get("status")
        if status == TaskStatus.READY:
            return Poll(UpstreamStatus.SUCCEEDED, 100, (await self._sample(job, task),))
        if status in (TaskStatus.REQUEST_MODERATED, TaskStatus.CONTENT_MODERATED):
            details = task.get("details")
            detail = f"{status}{f': {details}' if details else ''}"[:DETAIL_LIMIT]
            raise final(FailureCode.MODERATED, detail)
        if status == TaskStatus.ERROR:
            raise final(FailureCode.UPSTREAM_ERROR, f"the task failed: {task.get('details')}")
        if status == TaskStatus.NOT_FOUND:  # retryable: the runner asks a bounded number of times more
            raise BackendFailure(
                FailureCode.NOT_FOUND, "the upstream does not know this task", accepted=True, retryable=True
            )
        if status != TaskStatus.PENDING:
            log.warning("%s: unknown task status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING, _progress(task))

    async def _sample(self, job: BackendJob, task: Mapping[str, Any]) -> Output:
        result = task.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample:
            raise final(FailureCode.NO_MEDIA, "Ready without a sample")
        if urlsplit(sample).scheme not in ("https", self._client.base_url.scheme):
            raise final(FailureCode.UPSTREAM_ERROR, "the sample URL is not https")
        data, mime = await download(self._client, sample, what="the sample")  # signed URL: no key sent
        fmt = _FORMATS[str(job.params.get("output_format", "jpg"))]
        return Output(data, mime if mime and mime.startswith("image/") else f"image/{fmt}")

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None  # BFL documents no cancel
