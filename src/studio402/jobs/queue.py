"""Scale-out dispatch on procrastinate (PostgreSQL).

The job store stays the source of truth (status, leases, heartbeats); the queue only says "run job X now".
- A paid job is enqueued by the transaction that makes it runnable (`enqueue_in`), so it is never lost nor
  enqueued twice: `queueing_lock` = job id allows one waiting queue entry per job, `lock` = job id one
  running entry.
- A worker claims the job in the store by id before running it (a compare-and-set on the lease), so a queue
  entry delivered twice runs the job once.
- A periodic task retries the queue entries of workers that stopped sending heartbeats (procrastinate's
  stalled-job detection) and re-enqueues runnable jobs with no live queue entry and no live lease (crash
  after a claim, an entry lost with a worker).
- Cancel aborts the job's running entry: procrastinate cancels the worker's asyncio task.
These SQL calls use procrastinate's own functions (`procrastinate_defer_jobs_v1`, `..._cancel_job_v1`),
the stable interface its Python API calls too, so they can join our transactions."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

QUEUE = "studio402"
RUN_JOB = "studio402.run_job"
SWEEP = "studio402.sweep"

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :jid, :jid, CAST(:args AS jsonb),"
    " NULL)::procrastinate_job_to_defer_v1])"
)
_LIVE_ENTRIES = text(
    "SELECT id, status FROM procrastinate_jobs"
    " WHERE queueing_lock = :jid AND task_name = :task AND status IN ('todo', 'doing')"
)
_CANCEL = text("SELECT procrastinate_cancel_job_v1(:id, true, false)")
_ORPHANS = text(
    "SELECT j.id FROM jobs j"
    " WHERE j.status IN ('pending', 'loading') AND NOT j.held"
    " AND (j.lease_expires IS NULL OR j.lease_expires < :now)"
    " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE p.queueing_lock = j.id"
    " AND p.task_name = :task AND p.status IN ('todo', 'doing'))"
    " ORDER BY j.created_at LIMIT :limit"
)


@dataclass(frozen=True, slots=True)
class QueueTiming:
    """How fast the queue notices trouble. Defaults suit production; the chaos tests shrink them."""

    heartbeat_seconds: float = 10.0  # a worker's heartbeat to procrastinate
    stalled_seconds: float = 30.0  # a worker silent this long is dead: its entries are retried
    sweep_every_seconds: int = 15  # the periodic task's period (whole seconds: a cron field)
    poll_seconds: float = 5.0  # fallback fetch period when LISTEN/NOTIFY misses a wake-up


def enqueue_in(conn: Connection, job_id: str) -> None:
    """Enqueue `job_id` in the caller's transaction: committed with the job, or not at all."""
    conn.execute(_DEFER, {"queue": QUEUE, "task": RUN_JOB, "jid": job_id, "args": _args(job_id)})


def enqueue_if_idle(conn: Connection, job_id: str) -> bool:
    """Enqueue unless the job has a waiting or running entry; in a savepoint, so a concurrent enqueue
    (the unique queueing lock) only skips this one."""
    if conn.execute(_LIVE_ENTRIES, {"jid": job_id, "task": RUN_JOB}).first() is not None:
        return False
    try:
        with conn.begin_nested():
            enqueue_in(conn, job_id)
    except IntegrityError:  # the queueing lock: someone enqueued it meanwhile
        return False
    return True


def orphans(conn: Connection, now: float, limit: int = 500) -> list[str]:
    """Runnable jobs that nobody runs nor will: no live lease, no waiting or running queue entry."""
    rows = conn.execute(_ORPHANS, {"now": now, "task": RUN_JOB, "limit": limit})
    return [row.id for row in rows]


def abort_in(conn: Connection, job_id: str) -> int:
    """Cancel the job's waiting entry and ask its running one to abort; the number of entries touched."""
    entries = conn.execute(_LIVE_ENTRIES, {"jid": job_id, "task": RUN_JOB}).all()
    for entry in entries:
        conn.execute(_CANCEL, {"id": entry.id})
    return len(entries)


def _args(job_id: str) -> str:
    return json.dumps({"job_id": job_id})


def conninfo(url: str) -> str:
    """psycopg's connection string from our SQLAlchemy URL (procrastinate's workers use psycopg)."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url
