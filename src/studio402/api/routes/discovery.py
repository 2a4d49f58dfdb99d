"""Generated discovery documents and the health probe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from studio402.api.deps import wiring
from studio402.api.discovery.openapi import build_openapi
from studio402.api.discovery.texts import render_agents_txt, render_llms_txt
from studio402.api.discovery.wellknown import render_well_known

router = APIRouter()


@router.get("/api/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    cache = request.app.state.openapi_cache
    if cache is None:
        cache = request.app.state.openapi_cache = build_openapi(request.app, wiring(request))
    return JSONResponse(cache)


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="studio402 API")


@router.get("/llms.txt", response_class=PlainTextResponse, summary="Guide for LLM agents")
async def llms_txt(request: Request) -> PlainTextResponse:
    return PlainTextResponse(render_llms_txt(wiring(request)))


@router.get("/agents.txt", response_class=PlainTextResponse, summary="Machine-readable route list")
async def agents_txt(request: Request) -> PlainTextResponse:
    return PlainTextResponse(render_agents_txt(wiring(request)))


@router.get("/.well-known/x402", summary="Paid resources with their offers and input schemas")
async def well_known(request: Request) -> dict[str, Any]:
    return render_well_known(wiring(request))


@router.get("/api/health", summary="Liveness probe")
async def health() -> dict[str, str]:
    return {"status": "ok"}
