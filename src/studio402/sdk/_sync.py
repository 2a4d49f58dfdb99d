"""`Studio`: the same calls as AsyncStudio, blocking (it runs its own event loop; not for use inside one)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from studio402.sdk._client import AsyncStudio, OnUpdate
from studio402.sdk._models import Generated, Job, Quote, Route
from studio402.sdk._payment import SpendLimits
from studio402.sdk._wallet import Wallet

T = TypeVar("T")


class Studio:
    def __init__(
        self, server: str, wallet: Wallet | None = None, *, limits: SpendLimits | None = None, **options: Any
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = self._run(_make(server, wallet, limits, options))

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self.aio.aclose())
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def models(self) -> list[Route]:
        return self._run(self.aio.models())

    def quote(self, model: str, operation: str, body: Mapping[str, Any]) -> Quote:
        return self._run(self.aio.quote(model, operation, body))

    def generate(
        self,
        model: str,
        operation: str,
        body: Mapping[str, Any],
        *,
        files: Mapping[str, Path | Sequence[Path]] | None = None,
        wait: bool = True,
        out_dir: Path | None = None,
        payment_id: str | None = None,
        timeout: float = 600,
        on_update: OnUpdate | None = None,
    ) -> Generated:
        return self._run(
            self.aio.generate(
                model,
                operation,
                body,
                files=files,
                wait=wait,
                out_dir=out_dir,
                payment_id=payment_id,
                timeout=timeout,
                on_update=on_update,
            )
        )

    def upload(self, path: Path) -> str:
        return self._run(self.aio.upload(path))

    def job(self, job_id: str) -> Job:
        return self._run(self.aio.job(job_id))

    def jobs(self, *, limit: int = 20, status: str | None = None) -> list[Job]:
        return self._run(self.aio.jobs(limit=limit, status=status))

    def wait(self, job_id: str, *, timeout: float = 600, on_update: OnUpdate | None = None) -> Job:
        return self._run(self.aio.wait(job_id, timeout=timeout, on_update=on_update))

    def follow(self, job_id: str, *, timeout: float = 600, on_update: OnUpdate | None = None) -> Job:
        return self._run(self.aio.follow(job_id, timeout=timeout, on_update=on_update))

    def offers(self) -> list[dict[str, str]]:
        return self._run(self.aio.offers())

    def download(self, job: Job, out_dir: Path) -> list[Path]:
        return self._run(self.aio.download(job, out_dir))


async def _make(
    server: str, wallet: Wallet | None, limits: SpendLimits | None, options: dict[str, Any]
) -> AsyncStudio:
    return AsyncStudio(server, wallet, limits=limits, **options)  # its HTTP client binds to this loop
