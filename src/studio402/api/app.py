"""The ASGI app factory: assembles routes, problem handlers and the wiring's lifecycle. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from studio402 import __version__
from studio402.api import problems
from studio402.api.ops import admin, cors, metrics, static
from studio402.api.routes import blobs, discovery, generate, jobs, quote, upload
from studio402.redact import Scrubber
from studio402.wiring import Wiring


def create_app(wiring: Wiring) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await wiring.start()
        try:
            yield
        finally:
            await wiring.stop()

    app = FastAPI(
        title="studio402",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.wiring = wiring
    app.state.openapi_cache = None
    app.state.scrubber = Scrubber.from_settings(wiring.settings)
    problems.install(app)
    for module in (generate, quote, upload, jobs, blobs, discovery):
        app.include_router(module.router)
    app.include_router(metrics.router)
    app.include_router(admin.router)
    static.install(app)  # the studio page at / and its assets
    cors.install(app, wiring.settings.server.cors_origins)
    return app
