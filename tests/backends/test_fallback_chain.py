"""A chain [fal, replicate] through the real runner: a refusal *before* acceptance hands the job to the next
backend; once fal accepted (or may have accepted) the request, Replicate never sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from studio402.backends.base import Backend
from studio402.backends.fal import FalBackend
from studio402.backends.replicate import ReplicateBackend
from tests.backends.upstream_support import (
    assert_complete,
    assert_failed,
    geometry_of,
    harness_for,
    provider,
    video_size,
)
from tests.fakes.fake_server import Outcome, Scenario
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate

ROUTE = "veo-3.1-fast/generate"
BODY = {"prompt": "a glacier calving", "durationSeconds": "4"}
SIZE = geometry_of(ROUTE, BODY)


@pytest.fixture
async def fal_fake() -> AsyncIterator[FakeFal]:
    server = FakeFal(Scenario(size=SIZE))
    async with server.running():
        yield server


@pytest.fixture
async def replicate_fake() -> AsyncIterator[FakeReplicate]:
    server = FakeReplicate(Scenario(size=SIZE))
    async with server.running():
        yield server


def chain(fal: FakeFal, replicate: FakeReplicate, *, fal_timeout: float = 5.0) -> dict[str, Backend]:
    return {
        "fal": FalBackend(
            "fal",
            provider("fal", fal.base_url, models={ROUTE: "fal-ai/veo3.1/fast"}, timeout_seconds=fal_timeout),
        ),
        "replicate": ReplicateBackend(
            "replicate",
            provider("replicate", f"{replicate.base_url}/v1", models={"veo-3.1-fast": "google/veo-3.1-fast"}),
        ),
    }


async def test_refusal_before_acceptance_falls_back(
    fal_fake: FakeFal, replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    fal_fake.scenario.submit_errors = [503] * 10
    async with harness_for(tmp_path, chain(fal_fake, replicate_fake)) as h:
        ended = await h.run((await h.submit(ROUTE, BODY)).id)
        assert_complete(ended)
        assert video_size(await h.result_bytes(ended)) == SIZE
    assert ended.backend == "replicate" and ended.upstream_id in replicate_fake.tasks
    assert (fal_fake.attempts, fal_fake.created) == (h.config.submit_attempts, 0)
    assert (replicate_fake.attempts, replicate_fake.created) == (1, 1)


async def test_failure_after_acceptance_never_reaches_the_next_backend(
    fal_fake: FakeFal, replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    fal_fake.scenario.outcome = Outcome.FAILED
    async with harness_for(tmp_path, chain(fal_fake, replicate_fake)) as h:
        ended = await h.run((await h.submit(ROUTE, BODY)).id)
    assert_failed(ended, "upstream_error")
    assert ended.backend == "fal" and fal_fake.created == 1
    assert replicate_fake.attempts == 0


async def test_lost_submission_answer_is_not_sent_anywhere_else(
    fal_fake: FakeFal, replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    """The request reached fal but its answer was lost: it may run (and bill) there, so no second backend."""
    fal_fake.scenario.delay = 1.0
    async with harness_for(tmp_path, chain(fal_fake, replicate_fake, fal_timeout=0.2)) as h:
        ended = await h.run((await h.submit(ROUTE, BODY)).id)
    assert_failed(ended, "timeout")
    assert fal_fake.attempts == 1 and replicate_fake.attempts == 0
