"""Running one job: pick a backend of the route's chain, submit (persisting the upstream id before waiting),
poll with backoff, store the outputs, and end the job `complete` or `failed` with a stable code.

Retry policy, in one place: retryable failures (429, 5xx, timeouts) are retried with backoff (honouring
Retry-After); a backend that fails *before* accepting the job may hand over to the next backend of the
chain; after acceptance there is no fallback (never run one paid request twice upstream)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from studio402 import failpoints
from studio402.backends.base import (
    Ask,
    Backend,
    BackendFailure,
    BackendJob,
    FailureCode,
    MediaInput,
    Poll,
    UpstreamStatus,
)
from studio402.backends.registry import BackendRegistry
from studio402.catalog import Catalog
from studio402.db.job_store import SqlJobStore
from studio402.errors import Studio402Error
from studio402.jobs.events import JobEvents
from studio402.jobs.model import Job, JobStatus
from studio402.jobs.results import store_outputs
from studio402.storage.base import BlobStore

log = logging.getLogger(__name__)
SUBMITTING = "?submitting"  # stored as the upstream id while a submission's outcome is unknown
_T = TypeVar("_T")
# Failures before acceptance that another backend may cure (not moderation or a refused request).
FALLBACK_ON = frozenset(
    {
        FailureCode.RATE_LIMITED,
        FailureCode.UPSTREAM_ERROR,
        FailureCode.TIMEOUT,
        FailureCode.AUTH,
        FailureCode.UNAVAILABLE,
    }
)


class MediaLoader(Protocol):
    async def load(self, job: Job) -> list[MediaInput]: ...


class NoMedia:
    async def load(self, job: Job) -> list[MediaInput]:
        return []


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    lease_seconds: float = 30.0
    submit_attempts: int = 4
    poll_errors: int = 8
    first_poll: float = 0.5
    max_poll: float = 15.0
    backoff: float = 1.0
    deadline_seconds: float = 3600.0
    max_attempts: int = 5  # runs interrupted by crashes or bugs before the job fails (and is refunded)


def job_seed(job: Job) -> int:
    """The request's own seed, else one derived from the request: the same request renders the same pixels."""
    seed = job.request.get("seed")
    if isinstance(seed, int):
        return seed
    return int.from_bytes(hashlib.sha256(job.fingerprint.encode()).digest()[:4], "big")


class JobRunner:
    def __init__(
        self,
        store: SqlJobStore,
        registry: BackendRegistry,
        blobs: BlobStore,
        events: JobEvents,
        catalog: Catalog,
        *,
        owner: str,
        media: MediaLoader | None = None,
        on_terminal: Callable[[Job], Awaitable[None]] | None = None,
        config: RunnerConfig = RunnerConfig(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._registry = registry
        self._blobs = blobs
        self._events = events
        self._catalog = catalog
        self._owner = owner
        self._media = media or NoMedia()
        self._on_terminal = on_terminal
        self._config = config
        self._clock = clock
        self._sleep = sleep

    async def run(self, job: Job) -> Job | None:
        """Generate `job` (already claimed by this owner); the ended job, or None if we lost it."""
        self._events.publish(job)
        heartbeat = asyncio.create_task(self._heartbeat(job))
        work = asyncio.create_task(self._generate(job))
        try:
            done, _ = await asyncio.wait({work, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            heartbeat.cancel()
            raise
        if work in done:
            heartbeat.cancel()
            return work.result()
        work.cancel()  # the lease is gone: canceled by its owner, or taken over after a stall
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        await self._cancel_upstream(job.id)
        return None

    async def _heartbeat(self, job: Job) -> None:
        every = self._config.lease_seconds / 3
        while True:
            await self._sleep(every)
            if not await self._store.heartbeat(
                job.id, self._owner, self._config.lease_seconds, self._clock()
            ):
                return

    async def _generate(self, job: Job) -> Job | None:
        route = self._catalog.get(job.model, job.operation)
        try:
            if job.attempts > self._config.max_attempts:
                raise BackendFailure(
                    FailureCode.UPSTREAM_ERROR,
                    f"gave up after {job.attempts - 1} interrupted runs",
                    accepted=True,
                    retryable=False,
                )
            backend_job = BackendJob(
                job.id,
                job.model,
                job.operation,
                job.request,
                tuple(await self._media.load(job)),
                seed=job_seed(job),
            )
            backend, poll = await self._produce(job, backend_job)
            metadata = {"studio402:job": job.id, "studio402:backend": backend.name}
            result = await store_outputs(self._blobs, job.id, route.kind, job.request, poll.outputs, metadata)
        except Studio402Error as failure:  # backend failures, and inputs gone missing from the store
            log.info("job %s failed: %s (%s)", job.id, failure.code, failure.detail)
            ended = await self._store.fail(
                job.id, failure.code, failure.detail, self._clock(), owner=self._owner
            )
        else:
            ended = await self._store.complete(job.id, self._owner, result, self._clock())
        if ended is not None:
            self._events.publish(ended)
            if self._on_terminal is not None:
                await self._on_terminal(ended)
        return ended

    async def _produce(self, job: Job, backend_job: BackendJob) -> tuple[Backend, Poll]:
        if job.upstream_id == SUBMITTING:
            raise BackendFailure(
                FailureCode.UPSTREAM_ERROR,
                f"interrupted while submitting to {job.backend}; not submitted twice",
                accepted=True,
                retryable=False,
            )
        if job.upstream_id and job.backend:
            backend = self._registry.get(job.backend)
            if backend is None:
                raise BackendFailure(
                    FailureCode.UNAVAILABLE, f"backend {job.backend} is no longer configured", accepted=True
                )
            log.info("job %s resumes polling %s at %s", job.id, job.upstream_id, backend.name)
            return backend, await self._follow(job, backend, backend_job, job.upstream_id)
        chain = self._registry.chain(job.route_key)
        if not chain:
            raise BackendFailure(FailureCode.UNAVAILABLE, f"no backend serves {job.route_key}")
        failure: BackendFailure | None = None
        ask = Ask.of_job(backend_job)
        for backend in chain:
            reason = backend.refusal(ask)
            if reason is not None:  # a limit of this upstream: never submitted (it would bill, then fail)
                failure = BackendFailure(FailureCode.UNAVAILABLE, f"{backend.name}: {reason}")
                continue
            try:
                return backend, await self._submit(job, backend, backend_job)
            except BackendFailure as exc:
                if exc.accepted or exc.failure not in FALLBACK_ON:
                    raise
                log.warning(
                    "job %s: %s refused before accepting (%s); trying the next backend",
                    job.id,
                    backend.name,
                    exc.code,
                )
                failure = exc
        assert failure is not None
        raise failure

    async def _submit(self, job: Job, backend: Backend, backend_job: BackendJob) -> Poll:
        # The intent first: a run that dies before the upstream's id is stored cannot know whether the
        # upstream accepted, so the next run refunds instead of submitting (and paying upstream) twice.
        await self._store.set_upstream(job.id, self._owner, backend.name, SUBMITTING, self._clock())
        try:
            submitted = await self._retrying(lambda: backend.submit(backend_job))
        except BackendFailure as exc:
            if not exc.accepted:  # refused: nothing runs upstream, the next backend may try
                await self._store.set_upstream(job.id, self._owner, backend.name, None, self._clock())
            raise
        # Persisted before waiting: a restart polls this id instead of paying for a new submission.
        upstream_id = submitted.upstream_id
        await self._store.set_upstream(job.id, self._owner, backend.name, upstream_id, self._clock())
        if submitted.result is not None and submitted.result.status is UpstreamStatus.SUCCEEDED:
            return submitted.result
        if submitted.upstream_id is None:
            raise BackendFailure(
                FailureCode.UPSTREAM_ERROR,
                f"{backend.name} returned neither a result nor an id",
                accepted=True,
                retryable=False,
            )
        return await self._follow(job, backend, backend_job, submitted.upstream_id)

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T:
        delay = self._config.backoff
        for attempt in range(1, self._config.submit_attempts + 1):
            try:
                return await call()
            except BackendFailure as exc:
                if not exc.retryable or exc.accepted or attempt == self._config.submit_attempts:
                    raise
                await self._sleep(exc.retry_after if exc.retry_after is not None else delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _follow(self, job: Job, backend: Backend, backend_job: BackendJob, upstream_id: str) -> Poll:
        cfg = self._config
        delay, errors = cfg.first_poll, 0
        deadline = (job.started_at or self._clock()) + cfg.deadline_seconds
        while True:
            await self._sleep(delay)
            try:
                poll = await backend.poll(backend_job, upstream_id)
            except BackendFailure as exc:
                errors += 1
                if not exc.retryable or errors > cfg.poll_errors:
                    exc.accepted = True
                    raise
                delay = exc.retry_after if exc.retry_after is not None else min(delay * 2, cfg.max_poll)
                continue
            errors = 0
            failpoints.hit("mid_upstream_poll")
            if poll.status is UpstreamStatus.SUCCEEDED:
                return poll
            if poll.progress is not None and poll.progress != job.progress:
                updated = await self._store.set_progress(job.id, self._owner, poll.progress, self._clock())
                if updated is not None:
                    job = updated
                    self._events.publish(job)
            if self._clock() > deadline:
                with contextlib.suppress(Exception):
                    await backend.cancel(backend_job, upstream_id)
                raise BackendFailure(
                    FailureCode.TIMEOUT, "the upstream did not finish in time", accepted=True, retryable=False
                )
            delay = poll.poll_after if poll.poll_after is not None else min(delay * 1.5, cfg.max_poll)

    async def cancelled(self, job_id: str) -> None:
        """The job's task was stopped because its owner canceled it."""
        await self._cancel_upstream(job_id)

    async def _cancel_upstream(self, job_id: str) -> None:
        job = await self._store.get(job_id)
        if job is None or not job.upstream_id or job.upstream_id == SUBMITTING or not job.backend:
            return
        backend = self._registry.get(job.backend)
        if backend is not None and job.status is JobStatus.CANCELED:
            try:
                await backend.cancel(
                    BackendJob(job.id, job.model, job.operation, job.request), job.upstream_id
                )
            except Exception:
                log.warning("cancel of %s at %s failed", job.upstream_id, job.backend, exc_info=True)
