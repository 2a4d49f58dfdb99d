"""Crash points for the chaos tests: a process armed with `failpoints = "name=probability,..."` SIGKILLs
itself when it passes an armed point, so a test can kill it at an exact step of the money path (after the
reservation, after the broadcast, after the job insert, mid upstream poll, mid result copy). Disarmed (the
default) a point costs one dict lookup."""

from __future__ import annotations

import os
import random
import signal
import sys

from studio402.errors import ConfigError

POINTS = frozenset(
    {"after_reserve", "after_broadcast", "after_job_insert", "mid_upstream_poll", "mid_result_copy"}
)
_armed: dict[str, float] = {}


def arm(spec: str) -> None:
    """Arm the points of `spec` ("after_reserve=0.2,mid_upstream_poll=0.05"); an empty spec disarms."""
    armed: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, chance = item.partition("=")
        if name not in POINTS:
            raise ConfigError(f"unknown failpoint {name!r}; known: {', '.join(sorted(POINTS))}")
        armed[name] = float(chance or 1.0)
    _armed.clear()
    _armed.update(armed)


def hit(name: str) -> None:
    chance = _armed.get(name)
    if chance is not None and random.random() < chance:  # noqa: S311 - chaos, not security
        sys.stderr.write(f"failpoint {name}: SIGKILL pid {os.getpid()}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
