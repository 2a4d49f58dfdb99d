"""In-process job events: status and progress changes fan out to SSE streams and other listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from studio402.jobs.model import Job

Listener = Callable[[Job], None]


class JobEvents:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Job]]] = {}
        self._listeners: list[Listener] = []

    def publish(self, job: Job) -> None:
        for queue in self._queues.get(job.id, ()):
            queue.put_nowait(job)
        for listener in self._listeners:
            listener(job)

    def listen(self, listener: Listener) -> None:
        """Called for every change of every job (webhooks)."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[asyncio.Queue[Job]]:
        queue: asyncio.Queue[Job] = asyncio.Queue()
        self._queues.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._queues.get(job_id, set())
            subscribers.discard(queue)
            if not subscribers:
                self._queues.pop(job_id, None)
