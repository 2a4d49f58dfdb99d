"""Job polling (spec "Job Polling"), wallet-signed with SIGN-IN-WITH-X: a wallet sees only its own jobs,
and a job that is not yours is a 404 like a job that does not exist (ids do not leak)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from studio402.api.auth import wallet
from studio402.api.deps import wiring
from studio402.app.job_lifecycle import JobLifecycle
from studio402.jobs.model import Job
from studio402.wiring import Wiring

router = APIRouter(tags=["jobs"])
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 2.0  # other processes' changes only show in the database


def _poll_headers(w: Wiring, job: Job) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    if not job.status.is_terminal:
        headers["Retry-After"] = str(w.catalog.lookup(job.model, job.operation).poll_seconds)
    return headers


async def _own_job(w: Wiring, request: Request, job_id: str) -> Job:
    payer = await wallet(w, request)  # first: a request without a sign-in gets the 402 challenge
    return await w.lifecycle.get_own(payer, job_id)


@router.get("/api/jobs/{job_id}", summary="Job status (SIGN-IN-WITH-X)")
async def get_job(job_id: str, request: Request) -> JSONResponse:
    w = wiring(request)
    job = await _own_job(w, request, job_id)
    return JSONResponse(w.lifecycle.view(job), headers=_poll_headers(w, job))


@router.get("/api/jobs", summary="Your jobs, newest first (SIGN-IN-WITH-X)")
async def list_jobs(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    status: str | None = Query(None),
    before: float | None = Query(None, description="createdAt cursor from the previous page"),
) -> JSONResponse:
    w = wiring(request)
    payer = await wallet(w, request)
    jobs = await w.lifecycle.list_own(payer, status=status, limit=limit, before=before)
    cursor = jobs[-1].created_at if len(jobs) == limit else None
    return JSONResponse(
        {"jobs": [w.lifecycle.view(j) for j in jobs], "nextCursor": cursor},
        headers={"Cache-Control": "no-store"},
    )


@router.delete("/api/jobs/{job_id}", summary="Delete a failed job (SIGN-IN-WITH-X)")
async def delete_job(job_id: str, request: Request) -> JSONResponse:
    w = wiring(request)
    job = await _own_job(w, request, job_id)
    await w.lifecycle.delete_failed(job)
    return JSONResponse({"success": True, "jobId": job.id})


@router.post("/api/jobs/{job_id}/cancel", summary="Cancel a job; refunded if it had not started")
async def cancel_job(job_id: str, request: Request) -> JSONResponse:
    w = wiring(request)
    job = await _own_job(w, request, job_id)
    return JSONResponse(w.lifecycle.view(await w.lifecycle.cancel(job)))


@router.get("/api/jobs/{job_id}/events", summary="Server-sent status events until the job ends")
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    w = wiring(request)
    job = await _own_job(w, request, job_id)
    return StreamingResponse(
        _stream(w.lifecycle, request, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(job_view_data: dict[str, Any]) -> bytes:
    return f"event: status\nid: {job_view_data['updatedAt']}\ndata: {json.dumps(job_view_data)}\n\n".encode()


async def _stream(jobs: JobLifecycle, request: Request, job: Job) -> AsyncIterator[bytes]:
    async with jobs.changes(job) as queue:
        current = await jobs.latest(job)
        yield _sse(jobs.view(current))
        last = (current.status, current.progress)
        quiet = 0.0
        while not current.status.is_terminal:
            try:
                current = await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
            except TimeoutError:
                current = await jobs.latest(current)
                quiet += RECHECK_SECONDS
            if (current.status, current.progress) != last:
                last, quiet = (current.status, current.progress), 0.0
                yield _sse(jobs.view(current))
            elif quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
