"""What every upstream adapter has in common: its name, settings and one HTTP client, the routes it serves,
its upstream models, the key header, and the HTTP exchanges of the task APIs and model hosts.

Two conventions, kept apart by `gated` (their failures differ, so they stay as they are):
    gated = True   (OpenAI, Gemini, Veo, BFL) an adapter missing settings serves no route (`supports` is
                   false), and a submission checks readiness first (`ensure_ready`);
    gated = False  (xAI, BytePlus, DashScope, fal, Replicate) routes are served by name, and a submission
                   without a key, or for a route not served, is refused before anything is sent.
Either way a refusal is `backend_unavailable`, not accepted, so the chain may fall back.

`probe()` (for `studio402 backends check --probe`) makes one cheap authenticated read, `GET probe_path` (list
models, credits, account), to show the credentials work without generating anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import httpx

from studio402.backends.base import Ask, BackendFailure, BackendJob, FailureCode, Poll, UpstreamStatus
from studio402.backends.hosted_io import fetch_media
from studio402.backends.http_common import (
    api_key,
    ensure_ready,
    final,
    json_object,
    new_client,
    send,
    status_failure,
    upstream_model,
)
from studio402.config import ProviderSettings


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """How the upstream answered a cheap authenticated read; `detail` never holds the key (nor the body,
    which may echo part of it)."""

    ok: bool
    status: int | None  # the HTTP status, None when nothing was answered
    detail: str


class UpstreamAdapter:
    default_url: ClassVar[str]  # where the upstream is, unless `base_url` says otherwise
    default_models: ClassVar[Mapping[str, str]] = {}  # route key or model -> upstream model
    routes: ClassVar[frozenset[str] | None] = None  # None: the routes the operator maps in `models`
    auth_header: ClassVar[str] = "Authorization"
    auth_scheme: ClassVar[str] = "Bearer"  # "": the bare key
    unserved: ClassVar[str] = "{name} has no model for {route}"  # the refusal of an unmapped route
    gated: ClassVar[bool] = True  # see the module docstring
    probe_path: ClassVar[str | None] = None  # a cheap authenticated GET (relative to the base, or absolute)

    def __init__(self, name: str, settings: ProviderSettings, *, default_url: str | None = None) -> None:
        self.name = name
        self._settings = settings
        self._client = new_client(settings, default_url or self.default_url)

    @classmethod
    def from_settings(cls, name: str, settings: ProviderSettings) -> Self:
        return cls(name, settings)

    def missing_settings(self) -> list[str]:
        missing = [] if api_key(self._settings) else ["api_key"]
        if self.routes is None and not self._settings.models:  # a model host serves only what is mapped
            missing.append("models")
        return missing

    def supports(self, route_key: str) -> bool:
        if not self._settings.enabled or not self._serves(route_key):
            return False
        return not (self.gated and self.missing_settings())

    def refusal(self, ask: Ask) -> str | None:
        """Why the upstream cannot serve `ask`; adapters with documented limits override this."""
        return None

    def _serves(self, route_key: str) -> bool:
        if self.routes is None:
            return upstream_model(self._settings, route_key, self.default_models) is not None
        return route_key in self.routes

    def _model(self, job: BackendJob) -> str:
        """The upstream model of a submission, or `backend_unavailable` before anything is sent."""
        if self.gated:
            ensure_ready(self.name, self._settings, self.missing_settings())
        model = upstream_model(self._settings, job.route_key, self.default_models)
        # A gated adapter sends any route the operator maps; the others only the routes they serve.
        if model is None or not (self.gated or self._serves(job.route_key)):
            detail = self.unserved.format(name=self.name, route=job.route_key)
            raise BackendFailure(FailureCode.UNAVAILABLE, detail)
        return model

    def _headers(self) -> dict[str, str]:
        """The key header. A gated adapter checked the key before submitting (a poll sends what it has)."""
        key = api_key(self._settings) or ""
        if not key and not self.gated:
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: no api_key configured")
        return {self.auth_header: f"{self.auth_scheme} {key}" if self.auth_scheme else key}

    def _failure(self, resp: httpx.Response, *, accepted: bool) -> BackendFailure:
        """An error answer -> a failure; adapters with a richer error envelope override this."""
        return status_failure(resp, accepted=accepted)

    # -- exchanges of the task APIs and model hosts (any 2xx is an answer) ----------------------------------

    async def _create(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Start a paid job: an error answer created nothing; a broken answer is final (never resent)."""
        resp = await send(self._client, "POST", path, creates=True, **kwargs)
        if resp.is_error:
            raise self._failure(resp, accepted=False)
        return json_object(resp, accepted=True, retryable=False)

    def _answer_id(self, value: Any, what: str) -> str:
        """The job id in a creation answer (the job may exist upstream: never resubmitted)."""
        if not isinstance(value, str) or not value:
            raise final(FailureCode.UPSTREAM_ERROR, f"{self.name}: no {what} in the answer")
        return value

    async def _get_json(self, path: str) -> dict[str, Any]:
        """The state of an accepted job."""
        resp = await send(self._client, "GET", path, accepted=True, headers=self._headers())
        if resp.is_error:
            raise self._failure(resp, accepted=True)
        return json_object(resp, accepted=True)

    async def _delivered(self, url: Any, missing: str, *, what: str = "the result") -> Poll:
        """A finished job: its media, fetched at once (result URLs expire); none at all is `no_media`."""
        if not url:
            raise final(FailureCode.NO_MEDIA, f"{self.name}: {missing}")
        return Poll(UpstreamStatus.SUCCEEDED, 100, (await fetch_media(self._client, str(url), what=what),))

    async def _cancel(self, method: str, path: str) -> httpx.Response:
        """Ask the upstream to cancel: a 5xx is a failure; any other answer is the caller's to read."""
        resp = await send(self._client, method, path, accepted=True, headers=self._headers())
        if resp.status_code >= 500:
            raise self._failure(resp, accepted=True)
        return resp

    async def _probe_headers(self) -> dict[str, str]:
        """The probe's credentials; adapters whose tokens are fetched or refreshed override this."""
        return self._headers()

    async def probe(self) -> ProbeResult:
        """One cheap authenticated read: do the configured credentials work? Nothing is generated."""
        if self.probe_path is None:
            return ProbeResult(False, None, f"{self.name}: no probe for this adapter")
        if "api_key" in self.missing_settings():  # credentials only: a route mapping is not needed here
            return ProbeResult(False, None, f"{self.name}: no api_key configured")
        try:
            resp = await send(self._client, "GET", self.probe_path, headers=await self._probe_headers())
        except BackendFailure as exc:
            return ProbeResult(False, None, f"{self.name}: {exc.detail}")
        return ProbeResult(resp.is_success, resp.status_code, f"HTTP {resp.status_code} {resp.reason_phrase}")

    async def aclose(self) -> None:
        await self._client.aclose()
