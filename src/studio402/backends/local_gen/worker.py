"""The GPU worker process: one warm pipeline, one job at a time, typed events back over its pipe."""

from __future__ import annotations

import logging
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from studio402.backends.base import FailureCode
from studio402.backends.local_gen.generate import Interrupted, LoadedPipeline, WorkerSpec, encode
from studio402.backends.local_gen.messages import Done, Failed, LoadFailed, Plan, Progress, Ready, Shutdown
from studio402.backends.local_gen.offline import block_network, set_offline_env

log = logging.getLogger(__name__)


def worker_main(conn: Connection, cancel: Event, spec: WorkerSpec) -> None:
    """Entry point of a worker process (started by the pool; returns when told to or the parent is gone)."""
    set_offline_env()
    block_network()
    try:
        loaded = LoadedPipeline(spec)
    except Exception as exc:  # missing files, bad weights, out of memory: the backend refuses, others serve
        conn.send(LoadFailed(f"{type(exc).__name__}: {exc}"))
        return
    conn.send(Ready(loaded.device, loaded.name))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, Shutdown):
            return
        if isinstance(message, Plan):
            conn.send(run_plan(loaded, message, conn, cancel))


def run_plan(loaded: LoadedPipeline, plan: Plan, conn: Connection, cancel: Event) -> Done | Failed:
    try:
        output: Any = loaded.run(plan, lambda k, n: conn.send(Progress(plan.job_id, k, n)), cancel.is_set)
        return Done(plan.job_id, encode(plan, output, loaded.spec.label))
    except Interrupted:
        failed = Failed(plan.job_id, FailureCode.CANCELED, "canceled between two denoising steps")
    except Exception as exc:  # the job fails (and is refunded); the worker stays up for the next one
        log.warning("local job %s failed", plan.job_id, exc_info=True)
        failed = Failed(plan.job_id, FailureCode.UPSTREAM_ERROR, f"{type(exc).__name__}: {exc}")
    loaded.release()  # the failed run's tensors (activations, latents) go, and the GPU cache with them
    return failed
