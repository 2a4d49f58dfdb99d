"""A backend whose behaviour a test scripts (succeed, fail with a code, or wait at a gate first), and a
registry that routes everything to one backend."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from studio402.backends.base import (
    Ask,
    Backend,
    BackendFailure,
    BackendJob,
    FailureCode,
    Output,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.registry import BackendRegistry


def only(backend: Backend) -> BackendRegistry:
    """A registry that sends every route to `backend`."""
    return BackendRegistry({backend.name: backend}, default=[backend.name])


def tiny_png(size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


class ScriptedBackend:
    def __init__(
        self,
        name: str = "scripted",
        *,
        fail: FailureCode | None = None,
        gate: asyncio.Event | None = None,
        refuse: str | None = None,
    ) -> None:
        self.name = name
        self.fail = fail
        self.gate = gate
        self.refuse = refuse  # a limit of this upstream: every request is refused with it
        self.submissions = 0
        self.started = asyncio.Event()

    def refusal(self, ask: Ask) -> str | None:
        return self.refuse

    def supports(self, route_key: str) -> bool:
        return True

    async def submit(self, job: BackendJob) -> Submitted:
        self.submissions += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise BackendFailure(self.fail, f"scripted {self.fail.value}", accepted=True, retryable=False)
        return Submitted(None, Poll(UpstreamStatus.SUCCEEDED, 100, (Output(tiny_png(), "image/png"),)))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        raise AssertionError("synchronous")

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class ScriptedAsyncBackend:
    """An asynchronous upstream: submit returns an id; poll says running until `gate` is set."""

    def __init__(self, name: str = "async-upstream", *, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.gate = gate or asyncio.Event()
        self.submissions = 0
        self.polls = 0

    def refusal(self, ask: Ask) -> str | None:
        return None

    def supports(self, route_key: str) -> bool:
        return True

    async def submit(self, job: BackendJob) -> Submitted:
        self.submissions += 1
        return Submitted(f"up-{job.id}")

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        self.polls += 1
        assert upstream_id == f"up-{job.id}"
        if not self.gate.is_set():
            return Poll(UpstreamStatus.RUNNING, progress=min(90, self.polls * 10), poll_after=0.02)
        return Poll(UpstreamStatus.SUCCEEDED, 100, (Output(tiny_png(), "image/png"),))

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
