"""`type = "diffusers"`: serve catalog routes from an open-weight model on this machine's GPU (or CPU).

    [backends.providers.flux-local]
    type = "diffusers"
    options = { model_path = "/srv/models/FLUX.1-schnell", pipeline = "text-to-image", workers = 1 }

A model that is not installed (no folder, no cached snapshot, no `studio402[local]`) is refused with
"not installed": `backends check` shows it and the chain falls through to its next backend. A job is queued
for the worker processes (pool.py) and followed by the runner's polls: progress is denoising step k of n.
Jobs live in this process: after a restart, a job that was running here is failed (and refunded)."""

from __future__ import annotations

from typing import Self

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
from studio402.backends.local_gen.generate import WorkerSpec
from studio402.backends.local_gen.options import Installed, LocalOptions, locate
from studio402.backends.local_gen.plan import build_plan, refusal
from studio402.backends.local_gen.pool import LocalStatus, WorkerPool
from studio402.catalog import CATALOG, Catalog, Kind
from studio402.config import ProviderSettings

UPSTREAM_PREFIX = "local:"


class DiffusersBackend:
    def __init__(
        self, name: str, options: LocalOptions, *, enabled: bool = True, catalog: Catalog = CATALOG
    ) -> None:
        self.name = name
        self.options = options
        self._enabled = enabled
        self._catalog = catalog
        self._installed: Installed | None = None
        self._pool: WorkerPool | None = None

    @classmethod
    def from_settings(cls, name: str, settings: ProviderSettings) -> Self:
        return cls(name, LocalOptions.parse(name, settings.options), enabled=settings.enabled)

    def installed(self) -> Installed | str:
        """The model, or why it is not installed; looked up again until found (seeding needs no restart)."""
        if self._installed is None:
            found = locate(self.options)
            if isinstance(found, str):
                return found
            self._installed = found
        return self._installed

    def missing_settings(self) -> list[str]:
        found = self.installed()
        return [found] if isinstance(found, str) else []

    def supports(self, route_key: str) -> bool:
        if not self._enabled or (self.options.routes is not None and route_key not in self.options.routes):
            return False
        route = next((r for r in self._catalog if r.key == route_key), None)
        if route is None or route.kind is Kind.UPLOAD:
            return False
        return (route.kind is Kind.VIDEO) == self.options.pipeline.video

    def refusal(self, ask: Ask) -> str | None:
        found = self.installed()
        if isinstance(found, str):
            return found
        return refusal(ask, self.options.pipeline, found.family)

    async def submit(self, job: BackendJob) -> Submitted:
        found = self.installed()
        reason = (
            found if isinstance(found, str) else refusal(Ask.of_job(job), self.options.pipeline, found.family)
        )
        if reason is not None:  # checked before payment too; the model may have gone since
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: {reason}")
        assert not isinstance(found, str)
        plan = build_plan(job, self._catalog.get(job.model, job.operation), self.options, found.family)
        await self._workers(found).submit(plan)  # a model that cannot load: refused, the chain goes on
        return Submitted(upstream_id=UPSTREAM_PREFIX + job.id)

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        local = self._pool.get(job.id) if self._pool is not None else None
        if local is None or upstream_id != UPSTREAM_PREFIX + job.id:
            raise BackendFailure(
                FailureCode.NOT_FOUND,
                f"{self.name}: no such local job (the process that ran it restarted)",
                accepted=True,
                retryable=False,
            )
        if local.status is LocalStatus.QUEUED:
            return Poll(UpstreamStatus.QUEUED, 0)
        if local.status is LocalStatus.RUNNING:
            return Poll(UpstreamStatus.RUNNING, local.percent)
        assert self._pool is not None
        self._pool.forget(job.id)
        if local.failure is not None:
            failure = local.failure
            raise BackendFailure(
                failure.code, f"{self.name}: {failure.detail}", accepted=True, retryable=False
            )
        outputs = tuple(Output(f.data, f.mime, f.role) for f in local.files)
        return Poll(UpstreamStatus.SUCCEEDED, 100, outputs)

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        if self._pool is not None:
            self._pool.cancel(job.id)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def _workers(self, found: Installed) -> WorkerPool:
        if self._pool is None:
            o = self.options
            specs = [
                WorkerSpec(found.source, o.pipeline, i, o.device, o.dtype, o.offload, o.cache_dir, self.name)
                for i in range(o.workers)
            ]
            self._pool = WorkerPool(specs, load_timeout=o.load_timeout_seconds)
        return self._pool
