"""Replicate predictions API, for any catalog route configured in `models` (route key or model -> target):

    "owner/name"                 POST /models/{owner}/{name}/predictions {input}      (official models)
    "owner/name:<version>"       POST /predictions {version, input}
    "<64-hex version>"           POST /predictions {version, input}
    "deployments/owner/name"     POST /deployments/{owner}/{name}/predictions {input}
    GET  /predictions/{id}          status: starting|processing|succeeded|failed|canceled|aborted
    POST /predictions/{id}/cancel

Asynchronous only: `Prefer: wait` is never sent (the runner persists the id before waiting).
`options.cancel_after` sends `Cancel-After` (e.g. "30m"). `aborted` (the deadline passed before the
prediction started; Replicate does not charge it) ends the job as EXPIRED: the upstream dropped it, and since
the id was accepted the runner never resubmits or falls back; the payer is refunded. A 429 says when to retry
in its detail ("Your rate limit resets in ~30s") when no Retry-After header is given.

Inputs follow the generic mapping of `hosted_io` with Replicate's usual names (`image`, `last_frame`,
`image_input`, `reference_images`; durations as integers), overridable per route in `options.inputs`. For
the models `replicate_models` knows, only the inputs of the model's published schema are sent (with its own
names and values), and what the model cannot do is refused before payment (`refusal`); for other targets
`options.runs` names the model a deployment or bare version runs, and `options.accepts` lists the inputs
the operator vouches for."""

from __future__ import annotations

import logging
import re
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
from studio402.backends.fal_replicate_inputs import accepts_option
from studio402.backends.hosted_io import InputMap, check_input_options, input_map, media_urls
from studio402.backends.http_common import final, status_failure, upstream_model
from studio402.backends.replicate_models import known, model_of, runs_option
from studio402.config import ProviderSettings

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://api.replicate.com/v1"
_VERSION = re.compile(r"^[0-9a-f]{64}$")
_RESETS_IN = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_PROGRESS = re.compile(r"(\d{1,3})%")
# Safety refusals of the hosted models: Google's "(E005) ... flagged as sensitive", NSFW checkers.
_MODERATION = re.compile(r"\bE005\b|flagged as sensitive|nsfw|safety (?:filter|check)|content policy", re.I)
REPLICATE_INPUTS = InputMap(
    rename={
        "aspectRatio": "aspect_ratio",
        "durationSeconds": "duration",
        "seconds": "duration",
        "outputResolution": "resolution",
        "imageSize": "resolution",
        "negativePrompt": "negative_prompt",
        "image": "image",
        "input_reference": "image",
        "lastFrame": "last_frame",
        "images": "image_input",
        "referenceImages": "reference_images",
        "audioUrl": "audio",
        "audioUrls": "reference_audios",
        "first_frame": "image",
        "last_frame": "last_frame_image",
        "reference_images": "reference_images",
        "reference_videos": "reference_videos",
    },
    integers=frozenset({"duration"}),
)


class PredictionStatus(StrEnum):
    STARTING = "starting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"


def create_request(target: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Path and JSON of the create call for a configured target."""
    if target.startswith("deployments/"):
        return f"{target}/predictions", {"input": body}
    if _VERSION.match(target):
        return "predictions", {"version": target, "input": body}
    model, _, version = target.partition(":")
    if version:
        return "predictions", {"version": version, "input": body}
    return f"models/{model}/predictions", {"input": body}


def throttle_wait(resp: httpx.Response) -> float | None:
    match = _RESETS_IN.search(resp.text)
    return float(match.group(1)) if match else None


class ReplicateBackend(UpstreamAdapter):
    probe_path = "account"  # GET /v1/account: `backends check --probe`
    default_url = DEFAULT_BASE
    unserved = "{name}: no model for {route}"
    gated = False

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        check_input_options(REPLICATE_INPUTS, settings.options)
        self._accepts = accepts_option(settings.options)
        self._runs = runs_option(settings.options)

    def refusal(self, ask: Ask) -> str | None:
        """A limit of the configured model's published schema that the catalog does not have."""
        target = upstream_model(self._settings, ask.route_key, self.default_models)
        model = known(target, self._runs) if target else None
        return None if model is None else model.check(ask.params)

    def _input(self, job: BackendJob, target: str) -> dict[str, Any]:
        """The model's input: the generic mapping fitted to its published schema, only the names it lists."""
        model = known(target, self._runs)
        base = REPLICATE_INPUTS if model is None else model.inputs.fit(REPLICATE_INPUTS)
        body = input_map(base, self._settings.options, job.route_key).build(job)
        extra = self._accepts.get(model_of(target, self._runs) or target.strip("/"))
        if model is not None:
            return model.inputs.keep(body, extra or frozenset())
        return body if extra is None else {k: v for k, v in body.items() if k in extra}

    async def submit(self, job: BackendJob) -> Submitted:
        target = self._model(job).strip("/")
        refused = self.refusal(Ask.of_job(job))
        if refused is not None:  # the runner asks `refusal` first: this only guards direct calls
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: {refused}")
        path, body = create_request(target, self._input(job, target))
        headers = self._headers()
        if self._settings.options.get("cancel_after"):
            headers["Cancel-After"] = str(self._settings.options["cancel_after"])
        answer = await self._create(path, json=body, headers=headers)
        return Submitted(self._answer_id(answer.get("id"), "prediction id"))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        body = await self._get_json(f"predictions/{upstream_id}")
        status = body.get("status")
        if status == PredictionStatus.STARTING:
            return Poll(UpstreamStatus.QUEUED)
        if status == PredictionStatus.PROCESSING:
            return Poll(UpstreamStatus.RUNNING, _progress(body.get("logs")))
        if status == PredictionStatus.SUCCEEDED:
            urls = media_urls(body.get("output"))
            return await self._delivered(urls[0] if urls else None, "succeeded without media")
        return self._ended(str(status), body, upstream_id)

    def _ended(self, status: str, body: dict[str, Any], upstream_id: str) -> Poll:
        if status == PredictionStatus.FAILED:
            error = str(body.get("error") or "the prediction failed")
            code = FailureCode.MODERATED if _MODERATION.search(error) else FailureCode.UPSTREAM_ERROR
            raise final(code, f"{self.name}: {error}")
        if status == PredictionStatus.CANCELED:
            raise BackendFailure(
                FailureCode.CANCELED, f"{self.name}: the prediction was canceled", accepted=True
            )
        if status == PredictionStatus.ABORTED:
            raise final(
                FailureCode.EXPIRED,
                f"{self.name}: the prediction was aborted before it started (not charged upstream)",
            )
        log.warning("%s: unknown prediction status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING)

    def _failure(self, resp: httpx.Response, *, accepted: bool) -> BackendFailure:
        failure = status_failure(resp, accepted=accepted)
        if resp.status_code == 429 and failure.retry_after is None:
            failure.retry_after = throttle_wait(resp)
        return failure

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        resp = await self._cancel("POST", f"predictions/{upstream_id}/cancel")
        if resp.is_error:
            log.info("%s: prediction %s not canceled (HTTP %s)", self.name, upstream_id, resp.status_code)


def _progress(logs: Any) -> int | None:
    """Many models log tqdm bars ("45%|####"); the last percentage is the progress."""
    found = _PROGRESS.findall(logs) if isinstance(logs, str) else []
    return min(100, int(found[-1])) if found else None
