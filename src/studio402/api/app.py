"""The ASGI app factory: assembles routes, problem handlers and the services' lifecycle. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from studio402 import __version__
from studio402.api import problems
from studio402.api.routes import blobs, discovery, generate, jobs, quote, upload
from studio402.redact import Scrubber
from studio402.services import Services


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="studio402",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.openapi_cache = None
    app.state.scrubber = Scrubber.from_settings(services.settings)
    problems.install(app)
    for module in (generate, quote, upload, jobs, blobs, discovery):
        app.include_router(module.router)
    return app
