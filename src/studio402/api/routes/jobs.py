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
from studio402.api.deps import services
from studio402.errors import ConflictError, InputError, NotFound
from studio402.jobs.model import Job, JobStatus
from studio402.services import Services

router = APIRouter(tags=["jobs"])
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 2.0  # other processes' changes only show in the database


def _poll_headers(svc: Services, job: Job) -> dict[str, str]:
    headers = {"Cache-Control": "no-store"}
    if not job.status.is_terminal:
        headers["Retry-After"] = str(svc.catalog.lookup(job.model, job.operation).poll_seconds)
    return headers


async def _own_job(svc: Services, request: Request, job_id: str) -> Job:
    payer = await wallet(svc, request)
    job = await svc.jobs.get_for(payer, job_id)
    if job is None:
        raise NotFound(f"no job {job_id} for this wallet")
    return job


@router.get("/api/jobs/{job_id}", summary="Job status (SIGN-IN-WITH-X)")
async def get_job(job_id: str, request: Request) -> JSONResponse:
    svc = services(request)
    job = await _own_job(svc, request, job_id)
    return JSONResponse(svc.job_view(job), headers=_poll_headers(svc, job))


@router.get("/api/jobs", summary="Your jobs, newest first (SIGN-IN-WITH-X)")
async def list_jobs(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    status: str | None = Query(None),
    before: float | None = Query(None, description="createdAt cursor from the previous page"),
) -> JSONResponse:
    svc = services(request)
    payer = await wallet(svc, request)
    try:
        wanted = JobStatus(status) if status else None
    except ValueError:
        raise InputError(
            f"status must be one of {', '.join(s.value for s in JobStatus)}", code="invalid_status"
        ) from None
    jobs = await svc.jobs.list_for(payer, status=wanted, limit=limit, before=before)
    cursor = jobs[-1].created_at if len(jobs) == limit else None
    return JSONResponse(
        {"jobs": [svc.job_view(j) for j in jobs], "nextCursor": cursor},
        headers={"Cache-Control": "no-store"},
    )


@router.delete("/api/jobs/{job_id}", summary="Delete a failed job (SIGN-IN-WITH-X)")
async def delete_job(job_id: str, request: Request) -> JSONResponse:
    svc = services(request)
    job = await _own_job(svc, request, job_id)
    if job.status is not JobStatus.FAILED or not await svc.jobs.hide(job.id, svc.clock()):
        raise ConflictError("only failed jobs can be deleted", code="job_not_failed")
    return JSONResponse({"success": True, "jobId": job.id})


@router.post("/api/jobs/{job_id}/cancel", summary="Cancel a job; refunded if it had not started")
async def cancel_job(job_id: str, request: Request) -> JSONResponse:
    svc = services(request)
    job = await _own_job(svc, request, job_id)
    canceled = await svc.cancel_job(job)
    if canceled is None:
        raise ConflictError(
            f"the job is {job.status.value} and cannot be canceled", code="job_not_cancelable"
        )
    return JSONResponse(svc.job_view(canceled))


@router.get("/api/jobs/{job_id}/events", summary="Server-sent status events until the job ends")
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    svc = services(request)
    job = await _own_job(svc, request, job_id)
    return StreamingResponse(
        _stream(svc, request, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(job_view_data: dict[str, Any]) -> bytes:
    return f"event: status\nid: {job_view_data['updatedAt']}\ndata: {json.dumps(job_view_data)}\n\n".encode()


async def _stream(svc: Services, request: Request, job: Job) -> AsyncIterator[bytes]:
    async with svc.events.subscribe(job.id) as queue:
        current = await svc.jobs.get(job.id) or job
        yield _sse(svc.job_view(current))
        last = (current.status, current.progress)
        quiet = 0.0
        while not current.status.is_terminal:
            try:
                current = await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
            except TimeoutError:
                current = await svc.jobs.get(job.id) or current
                quiet += RECHECK_SECONDS
            if (current.status, current.progress) != last:
                last, quiet = (current.status, current.progress), 0.0
                yield _sse(svc.job_view(current))
            elif quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
