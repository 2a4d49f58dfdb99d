"""The Backend port: how a job reaches a generator (an upstream API or a local model).

    submit  -> an upstream id, persisted by the runner BEFORE it waits (a restart resumes polling it, never
               resubmits: each submission is paid upstream); synchronous APIs return the result at once
    poll    -> the upstream status mapped to ours, progress, and when done the output bytes
    cancel  -> best effort

Adapters raise `BackendFailure` with a stable code; `accepted` says whether the upstream took the job (only
a failure before acceptance may fall back to the next backend of the chain). Unknown upstream statuses are
never success: adapters map them to RUNNING until a deadline, or to FAILED."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.errors import BackendError


class FailureCode(StrEnum):
    MODERATED = "moderated"  # the upstream refused the prompt or the output (safety)
    NO_MEDIA = "no_media"  # "done" without any media (Veo RAI filter, Gemini IMAGE_SAFETY / NO_IMAGE)
    RATE_LIMITED = "rate_limited"  # 429: retry after `retry_after`
    UPSTREAM_ERROR = "upstream_error"  # 5xx / malformed answers: retryable
    TIMEOUT = "timeout"  # no answer / not done in time
    INVALID_REQUEST = "invalid_request"  # the upstream refused our request (4xx)
    AUTH = "upstream_auth"  # the operator's credentials were refused
    CANCELED = "canceled"
    EXPIRED = "expired"  # the upstream dropped the job or its result
    NOT_FOUND = "upstream_not_found"  # the upstream does not know the id
    UNAVAILABLE = "backend_unavailable"  # disabled / retired / not configured


RETRYABLE = frozenset({FailureCode.RATE_LIMITED, FailureCode.UPSTREAM_ERROR, FailureCode.TIMEOUT})


class BackendFailure(BackendError):
    """A backend could not (or will not) produce the media. `retryable`: the same call may succeed later
    (after `retry_after` seconds if given). `accepted`: the upstream had taken the job (no fallback then)."""

    def __init__(
        self,
        code: FailureCode,
        detail: str,
        *,
        retryable: bool | None = None,
        accepted: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, code=code.value)
        self.failure = code
        self.retryable = code in RETRYABLE if retryable is None else retryable
        self.accepted = accepted
        self.retry_after = retry_after


class UpstreamStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"


@dataclass(frozen=True, slots=True)
class Output:
    """One generated file, already downloaded (upstream URLs expire in minutes)."""

    data: bytes
    mime: str  # as the upstream says; the runner checks it by content
    role: str = "primary"  # "primary" or "thumbnail"


@dataclass(frozen=True, slots=True)
class Poll:
    status: UpstreamStatus
    progress: int | None = None  # 0-100 when the upstream says
    outputs: tuple[Output, ...] = ()  # set when SUCCEEDED
    poll_after: float | None = None  # upstream hint (e.g. openai-poll-after-ms)


@dataclass(frozen=True, slots=True)
class Submitted:
    upstream_id: str | None  # None for synchronous APIs, which answer with `result`
    result: Poll | None = None


@dataclass(frozen=True, slots=True)
class MediaInput:
    """A verified media input of the request, stored in our blob store (backends never fetch user URLs)."""

    loc: tuple[str | int, ...]
    kind: MediaKind
    mime: str
    data: bytes
    url: str  # a signed URL of our blob store, for upstreams that take URLs
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class BackendJob:
    id: str
    model: str
    operation: str
    params: Mapping[str, Any]  # the canonical body
    inputs: Sequence[MediaInput] = field(default_factory=tuple)
    seed: int = 0  # derived from the job, for backends that can be deterministic

    @property
    def route_key(self) -> str:
        return f"{self.model}/{self.operation}"

    def inputs_at(self, field_name: str) -> list[MediaInput]:
        return [i for i in self.inputs if i.loc and i.loc[0] == field_name]


@dataclass(frozen=True, slots=True)
class Ask:
    """A request as a backend sees it before anyone pays: the canonical body and what its media are. A
    backend that cannot serve it says why (`refusal`), and the payer gets a 400 instead of a 402."""

    model: str
    operation: str
    params: Mapping[str, Any]
    inputs: Sequence[InputFacts] = ()

    @property
    def route_key(self) -> str:
        return f"{self.model}/{self.operation}"

    def inputs_at(self, field_name: str) -> list[InputFacts]:
        return [i for i in self.inputs if i.loc[0] == field_name]

    @classmethod
    def of_job(cls, job: BackendJob) -> Ask:
        facts = [
            InputFacts(m.loc, m.kind, m.mime, len(m.data), m.width, m.height, m.duration_s)
            for m in job.inputs
        ]
        return cls(job.model, job.operation, job.params, tuple(facts))


class Backend(Protocol):
    name: str  # shown on the job ("preview", "openai", "fal", ...)

    def supports(self, route_key: str) -> bool: ...

    def refusal(self, ask: Ask) -> str | None:
        """Why this backend cannot serve `ask` (a limit of its upstream), or None. Checked before the 402
        (nobody pays for what no backend of the chain can do) and again before submitting."""
        ...

    async def submit(self, job: BackendJob) -> Submitted: ...

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll: ...

    async def cancel(self, job: BackendJob, upstream_id: str) -> None: ...

    async def aclose(self) -> None: ...
