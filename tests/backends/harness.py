"""Drive real jobs through the real JobRunner against one backend (e.g. an adapter on a fake upstream).

    harness = await JobHarness.open(tmp_path, backends={"openai": adapter})
    job = await harness.submit("gpt-image-2/generate", {"prompt": "a fox"})   # a paid, runnable job row
    ended = await harness.run(job.id)                                          # runs it to its end
    data = await harness.result_bytes(ended)                                   # the stored media

`run_until_upstream(job_id)` stops the runner right after the upstream id was persisted (a crash), and a
second `run(job_id)` (a new owner, as after a restart) must resume polling instead of resubmitting.
Media inputs: pass `inputs=[MediaInput(...)]` to `submit`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from studio402.backends.base import Backend, MediaInput
from studio402.backends.registry import BackendRegistry
from studio402.catalog import CATALOG
from studio402.db.engine import Database, open_database
from studio402.db.job_store import SqlJobStore
from studio402.db.ledger_store import job_row
from studio402.db.schema import jobs
from studio402.jobs.events import JobEvents
from studio402.jobs.model import Job
from studio402.jobs.runner import SUBMITTING, JobRunner, RunnerConfig
from studio402.payments.ledger import NewJob, new_id, new_webhook_secret
from studio402.storage.base import UrlSigner
from studio402.storage.local import LocalBlobStore

FAST = RunnerConfig(lease_seconds=30.0, first_poll=0.01, max_poll=0.05, backoff=0.01)


@dataclass
class StaticMedia:
    """The MediaLoader port with fixed inputs per job."""

    by_job: dict[str, list[MediaInput]] = field(default_factory=dict)

    async def load(self, job: Job) -> list[MediaInput]:
        return self.by_job.get(job.id, [])


@dataclass
class JobHarness:
    engine: Database
    store: SqlJobStore
    blobs: LocalBlobStore
    registry: BackendRegistry
    events: JobEvents
    media: StaticMedia
    config: RunnerConfig

    @classmethod
    async def open(
        cls,
        tmp: Path,
        backends: Mapping[str, Backend],
        *,
        chain: Sequence[str] | None = None,
        config: RunnerConfig = FAST,
        url: str | None = None,
    ) -> JobHarness:
        """`url`: a database with the schema (e.g. the `db_url` fixture's); a SQLite file in `tmp` if None."""
        engine = await open_database(url or f"sqlite:///{tmp / 'jobs.db'}")
        blobs = LocalBlobStore(tmp / "blobs", UrlSigner(b"k" * 32, "http://127.0.0.1:8402"))
        registry = BackendRegistry(backends, default=list(chain or backends))
        return cls(engine, SqlJobStore(engine), blobs, registry, JobEvents(), StaticMedia(), config)

    async def close(self) -> None:
        await self.engine.dispose()

    async def submit(
        self, route_key: str, body: Mapping[str, Any], *, inputs: Sequence[MediaInput] = ()
    ) -> Job:
        route = CATALOG.get(*route_key.split("/"))
        request = CATALOG.validate(route, dict(body))
        callback = request.canonical.get("callBackUrl")
        new = NewJob(
            new_id("job"),
            "0x" + "ab" * 20,
            route.model,
            route.operation,
            request.canonical_json,
            request.fingerprint,
            10_000,
            callback_url=callback,
            webhook_secret=new_webhook_secret() if callback else None,  # as the engine makes it
        )
        row = job_row(new, held=False, payment_id=None, now=time.time())
        await self.engine.write(lambda conn: conn.execute(insert(jobs).values(row)))
        self.media.by_job[new.id] = list(inputs)
        job = await self.store.get(new.id)
        assert job is not None
        return job

    def runner(self, owner: str, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> JobRunner:
        return JobRunner(
            self.store,
            self.registry,
            self.blobs,
            self.events,
            CATALOG,
            owner=owner,
            media=self.media,
            config=self.config,
            sleep=sleep,
        )

    async def _claim(self, job_id: str, owner: str) -> Job:
        # Expire any lease first: each call plays a fresh worker after a restart.
        await self.engine.write(
            lambda conn: conn.execute(update(jobs).where(jobs.c.id == job_id).values(lease_expires=0.0))
        )
        job = await self.store.claim(owner, self.config.lease_seconds, time.time())
        assert job is not None and job.id == job_id, "the job is not runnable"
        return job

    async def run(self, job_id: str, *, owner: str | None = None, timeout: float = 30.0) -> Job:
        owner = owner or new_id("worker")
        job = await self._claim(job_id, owner)
        await asyncio.wait_for(self.runner(owner).run(job), timeout)
        ended = await self.store.get(job_id)
        assert ended is not None
        return ended

    async def run_until_upstream(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Run until the upstream id is persisted, then kill the runner (a crash mid-job)."""
        owner = new_id("worker")
        job = await self._claim(job_id, owner)
        task = asyncio.create_task(self.runner(owner).run(job))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = await self.store.get(job_id)
            assert current is not None
            if current.upstream_id and current.upstream_id != SUBMITTING:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return current
            if task.done():
                raise AssertionError(f"the job ended before an upstream id was persisted: {current}")
            await asyncio.sleep(0.005)
        task.cancel()
        raise AssertionError("no upstream id within the timeout")

    async def result_bytes(self, job: Job, part: str | None = None) -> bytes:
        assert job.result is not None, (job.status, job.error_code, job.error_message)
        key = job.result[part or ("video" if "video" in job.result else "image")]["key"]
        return await self.blobs.get(key)

    @staticmethod
    def dump(job: Job) -> str:
        return json.dumps({"status": job.status, "error": job.error_code, "message": job.error_message})
