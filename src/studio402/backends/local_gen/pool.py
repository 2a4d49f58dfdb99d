"""GPU worker processes seen from the server: N workers, each one warm pipeline running one job at a time.

Jobs wait in one queue; each worker's driver task takes the next, sends it over the worker's pipe and reads
typed events back (progress, done, failed) without blocking the event loop (the pipe is watched with
`add_reader`). A worker that dies (segfault, OOM kill) fails its job and is restarted for the next one.

Workers are forked from a fork server that has imported torch and diffusers once (`preload.py`), where the
platform has one; else they are spawned. They start on the first job, not at start-up: an API-only process
or `backends check` never loads a model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from typing import Any

from studio402.backends.base import BackendFailure, FailureCode
from studio402.backends.local_gen.generate import WorkerSpec
from studio402.backends.local_gen.messages import (
    Done,
    Failed,
    LoadFailed,
    MediaFile,
    Plan,
    Progress,
    Ready,
    Shutdown,
)
from studio402.backends.local_gen.worker import worker_main

log = logging.getLogger(__name__)
PRELOAD = "studio402.backends.local_gen.preload"
STOP_SECONDS = 10.0


class LocalStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (LocalStatus.DONE, LocalStatus.FAILED)


@dataclass
class LocalJob:
    plan: Plan
    status: LocalStatus = LocalStatus.QUEUED
    step: int = 0
    total: int = 0
    files: tuple[MediaFile, ...] = ()
    failure: Failed | None = None
    canceled: bool = False
    worker: WorkerProcess | None = field(default=None, repr=False)

    @property
    def percent(self) -> int:
        """Denoising progress; 99 at most until the media is encoded."""
        return min(99, self.step * 100 // self.total) if self.total else 0


def context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([PRELOAD])
        return ctx
    return multiprocessing.get_context("spawn")


class WorkerProcess:
    """One child process and its pipe; `cancel` is shared memory the child checks between steps."""

    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self._ctx = ctx
        self.spec = spec
        self.cancel = ctx.Event()
        self._conn: Connection | None = None
        self._process: Any = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    async def start(self, timeout: float) -> Ready:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(
            target=worker_main, args=(child, self.cancel, self.spec), name=f"studio402-gpu-{self.spec.index}"
        )
        self._process.daemon = True  # never outlives the server
        await asyncio.to_thread(self._process.start)
        child.close()
        self._conn = parent
        try:
            event = await asyncio.wait_for(self.recv(), timeout)
        except (TimeoutError, EOFError, OSError) as exc:
            await self.stop()
            raise BackendFailure(FailureCode.UNAVAILABLE, f"model did not load: {exc!r}") from None
        if isinstance(event, LoadFailed):
            await self.stop()
            raise BackendFailure(FailureCode.UNAVAILABLE, f"model did not load: {event.detail}")
        assert isinstance(event, Ready), event
        return event

    def send(self, message: Plan | Shutdown) -> None:
        assert self._conn is not None
        self._conn.send(message)

    async def recv(self) -> Any:
        """The next event; EOFError when the process is gone. Waits on the pipe's fd, off the loop."""
        conn = self._conn
        if conn is None:
            raise EOFError("worker not started")
        loop = asyncio.get_running_loop()
        while not conn.poll():
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _set_done, readable)
            try:
                await readable
            finally:
                loop.remove_reader(conn.fileno())
        return conn.recv()

    async def stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(Shutdown())
            conn.close()
        if process is None:
            return
        await asyncio.to_thread(process.join, STOP_SECONDS)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, STOP_SECONDS)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WorkerPool:
    def __init__(self, specs: list[WorkerSpec], *, load_timeout: float) -> None:
        self._ctx = context()
        self._workers = [WorkerProcess(self._ctx, spec) for spec in specs]
        self._load_timeout = load_timeout
        self._queue: asyncio.Queue[LocalJob] = asyncio.Queue()
        self._jobs: dict[str, LocalJob] = {}
        self._drivers: list[asyncio.Task[None]] = []
        self._starting = asyncio.Lock()
        self.device: str | None = None

    async def submit(self, plan: Plan) -> None:
        """Queue `plan`; the first call loads the model in every worker (BackendFailure if it cannot)."""
        await self._ensure_started()
        job = LocalJob(plan)
        self._jobs[plan.job_id] = job
        self._queue.put_nowait(job)

    def get(self, job_id: str) -> LocalJob | None:
        return self._jobs.get(job_id)

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.status.is_terminal:
            return
        job.canceled = True
        if job.status is LocalStatus.RUNNING and job.worker is not None:
            job.worker.cancel.set()

    async def _ensure_started(self) -> None:
        async with self._starting:
            if self._drivers:
                return
            started = await asyncio.gather(
                *(w.start(self._load_timeout) for w in self._workers), return_exceptions=True
            )
            failures = [r for r in started if isinstance(r, BaseException)]
            if failures:  # all or nothing: the next job tries again
                await asyncio.gather(*(w.stop() for w in self._workers))
                raise failures[0]
            ready = [r for r in started if isinstance(r, Ready)]
            self.device = ready[0].device
            log.info("local model %s loaded on %s", ready[0].pipeline, ", ".join(r.device for r in ready))
            self._drivers = [asyncio.create_task(self._drive(w)) for w in self._workers]

    async def _drive(self, worker: WorkerProcess) -> None:
        while True:
            job = await self._queue.get()
            if job.canceled:  # nobody polls a canceled job any more
                self.forget(job.plan.job_id)
                continue
            if not worker.alive:
                try:
                    await worker.start(self._load_timeout)
                except BackendFailure as exc:
                    self._fail(job, FailureCode.UPSTREAM_ERROR, exc.detail)
                    continue
            await self._run(worker, job)

    async def _run(self, worker: WorkerProcess, job: LocalJob) -> None:
        worker.cancel.clear()
        job.status, job.worker = LocalStatus.RUNNING, worker
        try:
            worker.send(job.plan)
            while True:
                event = await worker.recv()
                if isinstance(event, Progress):
                    job.step, job.total = event.step, event.total
                elif isinstance(event, Done):
                    job.files, job.status = event.files, LocalStatus.DONE
                    return
                elif isinstance(event, Failed):
                    job.failure, job.status = event, LocalStatus.FAILED
                    return
        except (EOFError, OSError) as exc:  # the process died mid-job (killed, segfault, OOM)
            await worker.stop()
            self._fail(job, FailureCode.UPSTREAM_ERROR, f"the GPU worker died: {exc!r}")
        finally:
            job.worker = None
            if job.canceled:
                self.forget(job.plan.job_id)

    def _fail(self, job: LocalJob, code: FailureCode, detail: str) -> None:
        job.failure, job.status = Failed(job.plan.job_id, code, detail), LocalStatus.FAILED

    async def aclose(self) -> None:
        for task in self._drivers:
            task.cancel()
        for task in self._drivers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drivers = []
        await asyncio.gather(*(w.stop() for w in self._workers))
