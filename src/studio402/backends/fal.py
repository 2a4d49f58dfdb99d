"""fal.ai queue API, for any catalog route whose fal endpoint is configured in `models`
(route key or model -> endpoint id such as "fal-ai/veo3.1/fast").

    POST {endpoint}                                 input JSON -> {request_id, status_url, response_url, ...}
    GET  {owner}/{alias}/requests/{id}/status       {status: IN_QUEUE|IN_PROGRESS|COMPLETED, error?,
                                                     error_type?}
    GET  {owner}/{alias}/requests/{id}              the model output ({video:{url}} / {images:[{url}]} / ...)
    PUT  {owner}/{alias}/requests/{id}/cancel       202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED | 404

Status and result paths hold no endpoint subpath (fal_client builds them the same way, with an optional
`workflows/` or `comfy/` namespace). The upstream id we persist is "{endpoint}/requests/{request id}", so a
restart rebuilds every URL from the stored string alone.

fal serves each mode of a model as its own endpoint (Veo's image-to-video, first-last-frame-to-video, ...):
`fal_endpoints` picks the endpoint of a request's mode from the configured base, fits the inputs to that
endpoint's published schema (names, "6s" durations, "0.5K") and drops what it does not list; a mode fal does
not serve is refused before payment (`refusal`). Other endpoints get the generic mapping of `hosted_io`
(fal's snake_case names, `image_url`, `image_urls`, `end_image_url`, ...), limited to `options.accepts`
when the operator lists their inputs. `options.inputs` overrides the mapping per route or model;
`options.request_timeout` sends X-Fal-Request-Timeout (a start deadline) and `options.priority`
X-Fal-Queue-Priority."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from studio402.backends.fal_endpoints import Target, target
from studio402.backends.fal_replicate_inputs import accepts_option
from studio402.backends.hosted_io import InputMap, check_input_options, flagged, input_map, media_urls
from studio402.backends.http_common import (
    error_text,
    final,
    json_object,
    parsed_json,
    send,
    status_failure,
    upstream_model,
)
from studio402.config import ProviderSettings

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://queue.fal.run"
NAMESPACES = frozenset({"workflows", "comfy"})
REQUESTS = "/requests/"
MODERATION_TYPES = frozenset({"content_policy_violation"})
STILL_RUNNING = "still in progress"
FAL_INPUTS = InputMap(
    rename={
        "aspectRatio": "aspect_ratio",
        "durationSeconds": "duration",
        "seconds": "duration",
        "outputResolution": "resolution",
        "imageSize": "resolution",
        "negativePrompt": "negative_prompt",
        "image": "image_url",
        "input_reference": "image_url",
        "lastFrame": "end_image_url",
        "images": "image_urls",
        "referenceImages": "image_urls",
        "audioUrl": "audio_url",
        "audioUrls": "audio_urls",
        "first_frame": "image_url",
        "last_frame": "end_image_url",
        "reference_images": "image_urls",
        "reference_videos": "video_urls",
    }
)


class QueueStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True, slots=True)
class FalRequest:
    """A queued request: the endpoint it was sent to and fal's request id."""

    endpoint: str
    request_id: str

    @classmethod
    def parse(cls, upstream_id: str) -> FalRequest:
        endpoint, sep, request_id = upstream_id.rpartition(REQUESTS)
        if not sep or not endpoint or not request_id:
            raise final(FailureCode.NOT_FOUND, f"not a fal request id: {upstream_id!r}")
        return cls(endpoint, request_id)

    def __str__(self) -> str:
        return f"{self.endpoint}{REQUESTS}{self.request_id}"

    @property
    def base(self) -> str:
        """`[namespace/]owner/alias/requests/{id}`: the endpoint without its subpath."""
        parts = self.endpoint.strip("/").split("/")
        keep = 3 if parts[0] in NAMESPACES else 2
        return "/".join(parts[:keep]) + REQUESTS + self.request_id


class FalBackend(UpstreamAdapter):
    probe_path = "https://api.fal.ai/v1/models/pricing?endpoint_id=fal-ai/flux/dev"  # needs the key: --probe
    default_url = DEFAULT_BASE
    auth_scheme = "Key"
    unserved = "{name}: no fal endpoint for {route}"
    gated = False

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        check_input_options(FAL_INPUTS, settings.options)
        self._accepts = accepts_option(settings.options)

    def refusal(self, ask: Ask) -> str | None:
        """A mode the configured model has no fal endpoint for, or an option fal's endpoint lacks."""
        configured = upstream_model(self._settings, ask.route_key, self.default_models)
        return None if configured is None else target(configured, ask.operation, ask.params).refusal

    def _target(self, job: BackendJob) -> Target:
        found = target(self._model(job), job.operation, job.params)
        if found.refusal is not None:  # the runner asks `refusal` first: this only guards direct calls
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: {found.refusal}")
        return found

    def _body(self, job: BackendJob, found: Target) -> dict[str, Any]:
        base = FAL_INPUTS if found.published is None else found.published.fit(FAL_INPUTS)
        body = input_map(base, self._settings.options, job.route_key).build(job)
        extra = self._accepts.get(found.endpoint)
        if found.published is not None:
            return found.published.keep(body, extra or frozenset())
        return body if extra is None else {k: v for k, v in body.items() if k in extra}

    def _submit_headers(self) -> dict[str, str]:
        headers = self._headers()
        options = self._settings.options
        if options.get("request_timeout"):
            headers["X-Fal-Request-Timeout"] = str(options["request_timeout"])
        if options.get("priority"):
            headers["X-Fal-Queue-Priority"] = str(options["priority"])
        return headers

    async def submit(self, job: BackendJob) -> Submitted:
        found = self._target(job)
        answer = await self._create(
            found.endpoint, json=self._body(job, found), headers=self._submit_headers()
        )
        request_id = self._answer_id(answer.get("request_id"), "request_id")
        return Submitted(str(FalRequest(found.endpoint, request_id)))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        request = FalRequest.parse(upstream_id)
        body = await self._get_json(f"{request.base}/status")
        status = body.get("status")
        if status == QueueStatus.IN_QUEUE:
            return Poll(UpstreamStatus.QUEUED)
        if status == QueueStatus.IN_PROGRESS:
            return Poll(UpstreamStatus.RUNNING)
        if status != QueueStatus.COMPLETED:
            log.warning("%s: unknown queue status %r for %s; still waiting", self.name, status, upstream_id)
            return Poll(UpstreamStatus.RUNNING)
        if body.get("error"):
            code = (
                FailureCode.MODERATED
                if body.get("error_type") in MODERATION_TYPES
                else FailureCode.UPSTREAM_ERROR
            )
            raise final(code, f"{self.name}: {body.get('error_type') or 'error'}: {body['error']}")
        return await self._result(request)

    async def _result(self, request: FalRequest) -> Poll:
        resp = await send(self._client, "GET", request.base, accepted=True, headers=self._headers())
        if resp.status_code == 400 and STILL_RUNNING in error_text(resp).lower():
            return Poll(UpstreamStatus.RUNNING)  # the status said COMPLETED a moment too early
        if resp.is_error:
            raise self._failure(resp, accepted=True, model_error=resp.status_code < 500)
        output = json_object(resp, accepted=True)
        if flagged(output):
            raise BackendFailure(
                FailureCode.MODERATED,
                f"{self.name}: the output was flagged by the safety checker",
                accepted=True,
            )
        urls = media_urls(output)
        return await self._delivered(urls[0] if urls else None, "completed without media")

    def _failure(self, resp: httpx.Response, *, accepted: bool, model_error: bool = False) -> BackendFailure:
        """fal errors: {"detail": "..." | [{loc, msg, type}]}, `x-fal-error-type`; a content-policy refusal is
        a validation error of type `content_policy_violation`."""
        moderated = resp.headers.get("x-fal-error-type") in MODERATION_TYPES or bool(
            _detail_types(resp) & MODERATION_TYPES
        )
        failure = status_failure(resp, accepted=accepted, code=FailureCode.MODERATED if moderated else None)
        if model_error:
            failure.retryable = False  # the model itself answered with an error: asking again changes nothing
        return failure

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        """A queued request is removed; a running one only gets a signal (it may still complete)."""
        request = FalRequest.parse(upstream_id)
        resp = await self._cancel("PUT", f"{request.base}/cancel")
        log.info(
            "%s: cancel of %s answered HTTP %s %s", self.name, upstream_id, resp.status_code, resp.text[:80]
        )


def _detail_types(resp: httpx.Response) -> set[str]:
    body = parsed_json(resp)
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return set()
    return {str(item.get("type")) for item in detail if isinstance(item, dict)}
