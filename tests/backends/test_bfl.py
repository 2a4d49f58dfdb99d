"""Black Forest Labs adapter against a fake BFL API: full jobs through the real runner."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio402.backends.base import Ask, FailureCode
from studio402.backends.bfl import MAX_INPUT_IMAGES, ROUTES, BflBackend, request_body
from studio402.backends.factory import build_backend
from studio402.backends.preview.backend import PreviewBackend
from studio402.catalog import CATALOG
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.jobs.model import JobStatus
from studio402.jobs.runner import job_seed
from tests.backends.flows import (
    SHORT_DEADLINE,
    backend_job,
    cancel_mid_job,
    decoded_image,
    image_input,
    provider,
)
from tests.backends.harness import JobHarness
from tests.backends.sdk_support import route_jobs
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.bfl import API_KEY, FakeBfl
from tests.fakes.schema_check import issues, schema

ROUTE = "flux-2-pro/generate"


server, fake = fake_fixtures(FakeBfl)


def make_backend(fake: FakeBfl, *, key: str = API_KEY, trusted: bool = True) -> BflBackend:
    options: dict[str, Any] = {"polling_hosts": [fake.polling_host]} if trusted else {}
    return BflBackend.from_settings("bfl", provider("bfl", fake.url, key, **options))


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeBfl) -> AsyncIterator[JobHarness]:
    async with harness_for(tmp_path, {"bfl": make_backend(fake)}) as h:
        yield h


async def test_generate_polls_the_regional_host_and_downloads_without_the_key(
    harness: JobHarness, fake: FakeBfl
) -> None:
    body = {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "2 MP", "output_format": "png"}
    ended = await harness.run((await harness.submit(ROUTE, body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    img = decoded_image(await harness.result_bytes(ended))
    assert img.size == (1888, 1056) and img.format == "PNG"
    sent = fake.accepted[-1]
    assert (sent["width"], sent["height"], sent["output_format"]) == (1888, 1056, "png")
    polls = fake.hits("/v1/get_result")
    assert polls and all(r.headers["host"].startswith("localhost:") for r in polls)
    assert all(r.headers["x-key"] == API_KEY for r in polls)
    downloads = fake.hits("/delivery/")
    assert len(downloads) == 1 and "x-key" not in downloads[0].headers  # a signed URL: the key stays home
    assert str(ended.upstream_id).startswith(f"http://localhost:{fake.port}/v1/get_result?id=")


async def test_jpg_is_sent_as_jpeg(harness: JobHarness, fake: FakeBfl) -> None:
    job = await harness.submit(ROUTE, {"prompt": "a fox", "resolution": "0.5 MP", "output_format": "jpg"})
    ended = await harness.run(job.id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert decoded_image(await harness.result_bytes(ended)).format == "JPEG"
    # the request's own deterministic seed: the same request renders the same pixels
    assert (fake.accepted[-1]["output_format"], fake.accepted[-1]["seed"]) == ("jpeg", job_seed(job))


async def test_edit_sends_numbered_input_images(harness: JobHarness, fake: FakeBfl) -> None:
    inputs = [image_input("images", i, (48, 32), (i * 80, 50, 50)) for i in range(3)]
    body = {"prompt": "combine", "images": [f"https://x/{i}.png" for i in range(3)]}
    ended = await harness.run((await harness.submit("flux-2-max/edit", body, inputs=inputs)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    sent = fake.accepted[-1]
    assert [base64.b64decode(sent[k]) for k in ("input_image", "input_image_2", "input_image_3")] == [
        i.data for i in inputs
    ]
    assert "input_image_4" not in sent and next(iter(fake.tasks.values())).endpoint == "flux-2-max"


async def test_more_images_than_bfl_takes_is_refused_before_submitting(
    harness: JobHarness, fake: FakeBfl
) -> None:
    inputs = [image_input("images", i, (16, 16)) for i in range(9)]
    body = {"prompt": "many", "images": [f"https://x/{i}.png" for i in range(9)]}
    ended = await harness.run((await harness.submit("flux-2-max/edit", body, inputs=inputs)).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "backend_unavailable")
    assert fake.submissions == 0


@pytest.mark.parametrize(("count", "refused"), [(8, False), (9, True), (10, True)])
def test_more_images_than_bfl_takes_are_refused_before_payment(count: int, refused: bool) -> None:
    facts = tuple(InputFacts(("images", i), MediaKind.IMAGE, "image/png", 100, 16, 16) for i in range(count))
    backend = BflBackend("bfl", provider("bfl", "https://api.bfl.ai", "k"))
    reason = backend.refusal(Ask("flux-2-max", "edit", {"prompt": "p"}, facts))
    assert (reason is not None) is refused, reason


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("request_moderated", "moderated"),
        ("content_moderated", "moderated"),
        ("error", "upstream_error"),
        ("task_not_found", "upstream_not_found"),
        ("no_media", "no_media"),
        ("expired", "expired"),
    ],
)
async def test_tasks_ending_without_an_image(
    harness: JobHarness, fake: FakeBfl, scenario: str, code: str
) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, code)
    assert fake.submissions == 1


@pytest.mark.parametrize("scenario", ["rate_limited_once", "server_error_once", "poll_error_once"])
async def test_transient_errors_are_retried(harness: JobHarness, fake: FakeBfl, scenario: str) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert len(fake.tasks) == 1


async def test_rate_limit_wait_comes_from_the_body(fake: FakeBfl) -> None:
    backend = make_backend(fake)
    fake.scenario, fake.retry_after = "rate_limited_once", "3"
    failure = await failure_of(backend, backend.submit(backend_job(ROUTE, {"prompt": "x"})))
    assert (failure.failure, failure.retry_after) == (FailureCode.RATE_LIMITED, 3.0)


async def test_persistent_server_error_fails_upstream_error(harness: JobHarness, fake: FakeBfl) -> None:
    fake.scenario = "server_error_always"
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert fake.submissions == harness.config.submit_attempts and not fake.tasks


async def test_out_of_credits_hands_over_to_the_next_backend(tmp_path: Path, fake: FakeBfl) -> None:
    async with harness_for(tmp_path, {"bfl": make_backend(fake), "preview": PreviewBackend(CATALOG)}) as h:
        fake.scenario = "out_of_credits"
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x", "resolution": "0.5 MP"})).id)
    assert ended.status is JobStatus.COMPLETE and ended.backend == "preview"
    assert fake.submissions == 1


async def test_an_untrusted_polling_host_never_gets_the_key(tmp_path: Path, fake: FakeBfl) -> None:
    async with harness_for(tmp_path, {"bfl": make_backend(fake, trusted=False)}) as h:
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert fake.submissions == 1 and not fake.hits("/v1/get_result")


async def test_never_ready_times_out(tmp_path: Path, fake: FakeBfl) -> None:
    async with harness_for(tmp_path, {"bfl": make_backend(fake)}, config=SHORT_DEADLINE) as h:
        fake.scenario = "never_done"
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "timeout")
    assert len(fake.tasks) == 1


async def test_cancel_stops_polling(harness: JobHarness, fake: FakeBfl) -> None:
    fake.hold = True
    ended = await cancel_mid_job(harness, (await harness.submit(ROUTE, {"prompt": "x"})).id)
    assert ended.status is JobStatus.CANCELED
    polls = len(fake.hits("/v1/get_result"))
    await asyncio.sleep(0.1)
    assert len(fake.hits("/v1/get_result")) == polls  # BFL has no cancel: we just stop asking


async def test_restart_resumes_polling_without_resubmitting(
    tmp_path: Path, harness: JobHarness, fake: FakeBfl
) -> None:
    fake.hold = True
    job = await harness.submit(ROUTE, {"prompt": "x"})
    crashed = await harness.run_until_upstream(job.id)
    assert fake.submissions == 1 and len(fake.tasks) == 1
    fake.hold = False
    async with harness_for(tmp_path, {"bfl": make_backend(fake)}) as restarted:
        ended = await restarted.run(job.id)
    assert ended.status is JobStatus.COMPLETE, restarted.dump(ended)
    assert fake.submissions == 1 and len(fake.tasks) == 1
    assert fake.hits("/delivery/") and ended.upstream_id == crashed.upstream_id


@pytest.mark.parametrize("aspect", ["16:9", "9:16", "3:2", "4:5", "1:1"])
async def test_4_mp_keeps_every_side_within_bfl_limits(
    harness: JobHarness, fake: FakeBfl, aspect: str
) -> None:
    """4 MP at a non-square ratio computed a side above 2048 (2672 x 1504 for 16:9), which BFL does not take:
    the size is scaled down within 2048 per side, keeping the ratio and multiples of 16."""
    body = {"prompt": "a fox", "aspect_ratio": aspect, "resolution": "4 MP", "output_format": "png"}
    ended = await harness.run((await harness.submit("flux-2-max/generate", body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    sent = fake.accepted[-1]
    width, height = sent["width"], sent["height"]
    assert max(width, height) <= 2048 and width % 16 == 0 and height % 16 == 0
    w, h = (int(v) for v in aspect.split(":"))
    assert abs(width / height - w / h) < 0.02  # the ratio the payer asked for
    assert decoded_image(await harness.result_bytes(ended)).size == (width, height)


async def test_the_fake_refuses_what_bfl_refuses(fake: FakeBfl) -> None:
    body = {"prompt": "x", "width": 2672, "height": 1504, "output_quality": 80}
    async with httpx.AsyncClient(base_url=fake.url) as client:
        resp = await client.post("/v1/flux-2-max", json=body, headers={"x-key": API_KEY})
    assert resp.status_code == 422
    assert {tuple(d["loc"]) for d in resp.json()["detail"]} == {("body", "width"), ("body", "")}


def test_request_body_maps_the_canonical_body() -> None:
    job = backend_job(
        "flux-2-max/generate",
        {
            "prompt": "p",
            "aspectRatio": "4:5",
            "resolution": "4 MP",
            "safety_tolerance": 5,
            "prompt_upsampling": True,
        },
        seed=9,
    )
    assert request_body(job) == {
        "prompt": "p",
        "width": 1632,  # 4 MP at 4:5 is 1792 x 2240: scaled to 2048 at most per side
        "height": 2048,
        "seed": 9,
        "safety_tolerance": 5,
        "output_format": "webp",
    }


def test_trusted_polling_hosts() -> None:
    backend = BflBackend("bfl", provider("bfl", "https://api.bfl.ai", "k", polling_hosts=["bfl.example"]))
    assert backend.trusted("https://api.us1.bfl.ai/v1/get_result?id=1")
    assert backend.trusted("https://api.bfl.ai/v1/get_result?id=1")
    assert backend.trusted("https://bfl.example/v1/get_result?id=1")
    assert not backend.trusted("https://evil-bfl.ai/v1/get_result?id=1")
    assert not backend.trusted("https://api.bfl.ai.evil.com/v1/get_result?id=1")
    assert not backend.trusted("file:///etc/passwd")
    assert not backend.trusted("http://api.us1.bfl.ai/v1/get_result?id=1")  # the key never goes in clear


def test_built_from_the_factory_table() -> None:
    backend = build_backend("mine", provider("bfl", "http://127.0.0.1:9", "k"))
    assert isinstance(backend, BflBackend) and backend.name == "mine"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_request_validates_against_the_bundled_flux2_schema(route: str) -> None:
    """BFL publishes no Python SDK: every route's bodies (all enum combinations the catalog accepts) are
    checked against the Flux2Inputs schema bundled from BFL's OpenAPI document, and the 4 MP total."""
    jobs = [j for j in route_jobs(route) if len(j.inputs) <= MAX_INPUT_IMAGES]
    assert jobs
    for job in jobs:
        body = request_body(job)
        assert issues("bfl_flux2.json", body) == [], body
        assert body["width"] * body["height"] <= schema("bfl_flux2.json")["x-limits"]["max_pixels"]
