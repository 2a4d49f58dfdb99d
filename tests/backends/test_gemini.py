"""Gemini image adapter against a fake Gemini API: full jobs through the real runner."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio402.backends.base import BackendFailure, FailureCode
from studio402.backends.factory import build_backend
from studio402.backends.gemini import GeminiImageBackend, google_failure, image_output, request_body
from studio402.errors import ConfigError
from studio402.jobs.model import Job, JobStatus
from tests.backends.flows import backend_job, decoded_image, image_input, provider
from tests.backends.harness import JobHarness
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.gemini import API_KEY, FakeGemini

server, fake = fake_fixtures(FakeGemini)


def make_backend(
    fake: FakeGemini,
    *,
    key: str = API_KEY,
    timeout: float = 5.0,
    models: dict[str, str] | None = None,
    **options: Any,
) -> GeminiImageBackend:
    return GeminiImageBackend.from_settings(
        "gemini", provider("gemini", fake.url, key, timeout=timeout, models=models, **options)
    )


async def run_one(tmp_path: Path, backend: GeminiImageBackend, route: str, body: dict[str, Any]) -> Job:
    async with harness_for(tmp_path, {"gemini": backend}) as h:
        return await h.run((await h.submit(route, body)).id)


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeGemini) -> AsyncIterator[JobHarness]:
    async with harness_for(tmp_path, {"gemini": make_backend(fake)}) as h:
        yield h


@pytest.mark.parametrize(
    ("route", "body", "size"),
    [
        ("nano-banana/generate", {"prompt": "a fox", "aspectRatio": "16:9"}, (1376, 768)),
        (
            "nano-banana-pro/generate",
            {"prompt": "a fox", "aspect_ratio": "4:5", "imageSize": "2K"},
            (1856, 2304),
        ),
    ],
)
async def test_generate_stores_the_final_image(
    harness: JobHarness, fake: FakeGemini, route: str, body: dict[str, str], size: tuple[int, int]
) -> None:
    ended = await harness.run((await harness.submit(route, body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    img = decoded_image(await harness.result_bytes(ended))
    assert img.size == size and img.format == "PNG"  # the final image, not the interim "thought" one
    sent = fake.accepted[-1]
    assert sent["version"] == "v1beta"
    pro = route.startswith("nano-banana-pro/")
    assert sent["model"] == ("gemini-3-pro-image" if pro else "gemini-3.1-flash-image")


async def test_edit_sends_images_as_inline_data(harness: JobHarness, fake: FakeGemini) -> None:
    inputs = [image_input("images", 0, (96, 64)), image_input("images", 1, (40, 40), (0, 0, 250))]
    body = {"prompt": "combine", "images": ["https://x/a.png", "https://x/b.png"], "imageSize": "512"}
    ended = await harness.run((await harness.submit("nano-banana/edit", body, inputs=inputs)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert decoded_image(await harness.result_bytes(ended)).size == (632, 424)  # 3:2, as the first input
    parts = fake.accepted[-1]["contents"][0]["parts"]
    assert parts[0] == {"text": "combine"}
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts[1:]] == [i.data for i in inputs]


@pytest.mark.parametrize(
    ("body", "sent", "size"),
    [
        ({}, None, (1264, 848)),  # the 96x64 input is 3:2: the edit stays 3:2
        ({"aspectRatio": "16:9"}, "16:9", (1376, 768)),  # asked: sent
        ({"aspect_ratio": "9:16"}, "9:16", (768, 1376)),
    ],
)
async def test_an_edit_follows_the_input_image_unless_a_ratio_is_asked(
    harness: JobHarness,
    fake: FakeGemini,
    body: dict[str, str],
    sent: str | None,
    size: tuple[int, int],
) -> None:
    inputs = [image_input("images", 0, (96, 64))]
    request = {"prompt": "make it snow", "images": ["https://x/a.png"], **body}
    ended = await harness.run((await harness.submit("nano-banana-pro/edit", request, inputs=inputs)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert decoded_image(await harness.result_bytes(ended)).size == size
    assert fake.accepted[-1]["generationConfig"]["imageConfig"].get("aspectRatio") == sent


def test_a_generation_keeps_the_default_ratio() -> None:
    """Without input images there is nothing to follow: the route's default (square) is sent as asked."""
    job = backend_job("nano-banana/generate", {"prompt": "p"})
    assert request_body(job)["generationConfig"]["imageConfig"]["aspectRatio"] == "1:1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["generationConfig"]["imageConfig"].update(personGeneration="ALLOW_ALL"), "Unknown name"),
        (
            lambda b: b["contents"][0]["parts"][1]["inlineData"].update(data="data:image/png;base64,AAAA"),
            "process",
        ),
        (lambda b: b["contents"][0]["parts"][1]["inlineData"].update(mimeType="image/gif"), "MIME"),
        (lambda b: b["contents"][0]["parts"].extend([b["contents"][0]["parts"][1]] * 14), "Too many"),
        (
            lambda b: b["generationConfig"]["imageConfig"].update(aspectRatio="2:1"),
            "Unsupported image config",
        ),
        (lambda b: b["generationConfig"].update(thinkingConfig={"thinkingLevel": "LOW"}), "thinking_level"),
    ],
)
async def test_the_fake_refuses_what_the_api_refuses(
    fake: FakeGemini, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    job = backend_job(
        "nano-banana/edit", {"prompt": "p", "images": ["https://x/a.png"]}, (image_input("images", 0),)
    )
    body = request_body(job)
    change(body)
    async with httpx.AsyncClient(base_url=fake.url, headers={"x-goog-api-key": API_KEY}) as client:
        resp = await client.post("/v1beta/models/gemini-3.1-flash-image:generateContent", json=body)
    assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert message in resp.json()["error"]["message"] and not fake.accepted


async def test_api_version_and_model_are_configurable(tmp_path: Path, fake: FakeGemini) -> None:
    backend = make_backend(fake, models={"nano-banana": "gemini-3-pro-image"}, api_version="v1")
    ended = await run_one(tmp_path, backend, "nano-banana/generate", {"prompt": "x"})
    assert ended.status is JobStatus.COMPLETE, JobHarness.dump(ended)
    assert (fake.accepted[-1]["version"], fake.accepted[-1]["model"]) == ("v1", "gemini-3-pro-image")


async def test_an_unknown_upstream_model_fails_not_found(tmp_path: Path, fake: FakeGemini) -> None:
    backend = make_backend(fake, models={"nano-banana": "gemini-3.1-flash-image-preview"})  # shut down
    ended = await run_one(tmp_path, backend, "nano-banana/generate", {"prompt": "x"})
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_not_found")


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("moderated", "moderated"),
        ("prohibited", "moderated"),
        ("blocked", "moderated"),
        ("no_media", "no_media"),
        ("image_other", "no_media"),
    ],
)
async def test_answers_without_an_image(
    harness: JobHarness, fake: FakeGemini, scenario: str, code: str
) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit("nano-banana/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, code)
    assert fake.submissions == 1  # answered: never asked twice


@pytest.mark.parametrize("scenario", ["rate_limited_once", "server_error_once"])
async def test_transient_errors_are_retried(harness: JobHarness, fake: FakeGemini, scenario: str) -> None:
    fake.scenario = scenario
    ended = await harness.run((await harness.submit("nano-banana-pro/generate", {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert fake.submissions == 2


async def test_persistent_unavailability_fails_upstream_error(harness: JobHarness, fake: FakeGemini) -> None:
    fake.scenario = "server_error_always"
    ended = await harness.run((await harness.submit("nano-banana/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert fake.submissions == harness.config.submit_attempts


async def test_resource_exhausted_waits_the_retry_info_delay(fake: FakeGemini) -> None:
    backend = make_backend(fake)
    fake.scenario, fake.retry_after = "rate_limited_once", "2.5"
    failure = await failure_of(backend, backend.submit(backend_job("nano-banana/generate", {"prompt": "x"})))
    assert (failure.failure, failure.retry_after, failure.accepted) == (FailureCode.RATE_LIMITED, 2.5, False)


async def test_no_answer_times_out_once(tmp_path: Path, fake: FakeGemini) -> None:
    backend = make_backend(fake, timeout=0.3)
    fake.scenario = "hang"
    ended = await run_one(tmp_path, backend, "nano-banana/generate", {"prompt": "x"})
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "timeout")
    assert fake.submissions == 1


async def test_a_refused_key_is_an_auth_failure(fake: FakeGemini) -> None:
    backend = make_backend(fake, key="wrong-key")
    failure = await failure_of(backend, backend.submit(backend_job("nano-banana/generate", {"prompt": "x"})))
    assert failure.failure is FailureCode.AUTH and not failure.accepted


async def test_permission_denied_is_an_auth_failure(fake: FakeGemini) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        resp = await client.post("/v1beta/models/gemini-3-pro-image:generateContent", json={})
    assert resp.status_code == 403
    assert google_failure(resp, accepted=False).failure is FailureCode.AUTH


async def test_without_a_key_nothing_is_sent(fake: FakeGemini) -> None:
    backend = make_backend(fake, key="")
    assert not backend.supports("nano-banana/generate")
    failure = await failure_of(backend, backend.submit(backend_job("nano-banana/generate", {"prompt": "x"})))
    assert failure.failure is FailureCode.UNAVAILABLE and fake.submissions == 0


def test_request_body_maps_the_canonical_body() -> None:
    job = backend_job("nano-banana/generate", {"prompt": "p", "aspectRatio": "21:9", "thinkingLevel": "high"})
    assert request_body(job) == {
        "contents": [{"role": "user", "parts": [{"text": "p"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "21:9", "imageSize": "1K"},
            "thinkingConfig": {"thinkingLevel": "HIGH"},
        },
    }
    pro = backend_job("nano-banana-pro/generate", {"prompt": "p"})
    assert "thinkingConfig" not in request_body(pro)["generationConfig"]


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("SAFETY", FailureCode.MODERATED),
        ("IMAGE_RECITATION", FailureCode.MODERATED),
        ("SPII", FailureCode.MODERATED),
        ("NO_IMAGE", FailureCode.NO_MEDIA),
        ("STOP", FailureCode.NO_MEDIA),
        ("MAX_TOKENS", FailureCode.NO_MEDIA),
        ("SOMETHING_NEW", FailureCode.NO_MEDIA),
    ],
)
def test_finish_reasons_without_image(reason: str, code: FailureCode) -> None:
    with pytest.raises(BackendFailure) as info:
        image_output({"candidates": [{"finishReason": reason, "content": {"parts": [{"text": "no"}]}}]})
    assert info.value.failure is code and info.value.accepted and not info.value.retryable


def test_thought_images_are_skipped() -> None:
    thought = {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"thought").decode()},
        "thought": True,
    }
    with pytest.raises(BackendFailure) as info:
        image_output({"candidates": [{"finishReason": "STOP", "content": {"parts": [thought]}}]})
    assert info.value.failure is FailureCode.NO_MEDIA


def test_unsupported_api_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        GeminiImageBackend("g", provider("gemini", "http://127.0.0.1:9", "k", api_version="v2"))


def test_built_from_the_factory_table() -> None:
    backend = build_backend("mine", provider("gemini", "http://127.0.0.1:9", "k"))
    assert isinstance(backend, GeminiImageBackend) and backend.name == "mine"
