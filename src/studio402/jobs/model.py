"""Jobs: StableStudio's statuses and the one place that says which status changes are legal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from studio402.transitions import Transitions


class JobStatus(StrEnum):
    PENDING = "pending"  # paid, waiting for a worker (or for its payment to settle)
    LOADING = "loading"  # a worker is generating it
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED)


# The one place that says which status changes are legal; db/job_store.py builds its compare-and-set
# updates from it. LOADING -> LOADING: a worker takes over a job whose lease expired.
JOB_TRANSITIONS: Transitions[JobStatus] = Transitions.of(
    {
        JobStatus.PENDING: {JobStatus.LOADING, JobStatus.FAILED, JobStatus.CANCELED},
        JobStatus.LOADING: {JobStatus.LOADING, JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED},
    }
)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    payer: str
    model: str
    operation: str
    request: dict[str, Any]
    fingerprint: str
    status: JobStatus
    held: bool
    payment_id: str | None
    micros: int
    created_at: float
    updated_at: float
    backend: str | None = None
    upstream_id: str | None = None
    progress: int = 0
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    refund: dict[str, Any] | None = None
    callback_url: str | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def route_key(self) -> str:
        return f"{self.model}/{self.operation}"


def job_from_row(m: Any) -> Job:
    return Job(
        id=m["id"],
        payer=m["payer"],
        model=m["model"],
        operation=m["operation"],
        request=json.loads(m["request"]),
        fingerprint=m["fingerprint"],
        status=JobStatus(m["status"]),
        held=bool(m["held"]),
        payment_id=m["payment_id"],
        micros=m["micros"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        backend=m["backend"],
        upstream_id=m["upstream_id"],
        progress=m["progress"],
        result=json.loads(m["result"]) if m["result"] else None,
        error_code=m["error_code"],
        error_message=m["error_message"],
        refund=json.loads(m["refund"]) if m["refund"] else None,
        callback_url=m["callback_url"],
        lease_owner=m["lease_owner"],
        lease_expires=m["lease_expires"],
        attempts=m["attempts"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def is_refundable(job: Job) -> bool:
    """Failed after being charged, or canceled before any work started."""
    if job.status is JobStatus.FAILED:
        return job.error_code != "payment_failed"
    return job.status is JobStatus.CANCELED and job.started_at is None
