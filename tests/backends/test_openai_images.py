"""OpenAI Images adapter against a fake OpenAI server, full jobs through the real runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from studio402.backends.base import Ask, FailureCode
from studio402.backends.factory import build_backend
from studio402.backends.openai_images import OpenAIImagesBackend, request_fields
from studio402.config import ProviderSettings
from studio402.jobs.model import JobStatus
from tests.backends.flows import backend_job, decoded_image, image_input, provider
from tests.backends.harness import JobHarness
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.openai import API_KEY, FakeOpenAI

server, fake = fake_fixtures(FakeOpenAI)


def make_backend(fake: FakeOpenAI, *, key: str = API_KEY, timeout: float = 5.0) -> OpenAIImagesBackend:
    return OpenAIImagesBackend.from_settings(
        "openai", provider("openai-images", f"{fake.url}/v1", key, timeout=timeout)
    )


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[JobHarness]:
    async with harness_for(tmp_path, {"openai": make_backend(fake)}) as h:
        yield h


async def test_generate_stores_the_requested_size_and_format(harness: JobHarness, fake: FakeOpenAI) -> None:
    body = {"prompt": "a fox", "size": "1536x1024", "output_format": "webp", "quality": "high"}
    ended = await harness.run((await harness.submit("gpt-image-2/generate", body)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    img = decoded_image(await harness.result_bytes(ended))
    assert img.size == (1536, 1024) and img.format == "WEBP"
    assert fake.accepted[-1]["model"] == "gpt-image-2" and fake.accepted[-1]["quality"] == "high"
    assert fake.submissions == 1


async def test_edit_sends_every_image_as_a_multipart_part(harness: JobHarness, fake: FakeOpenAI) -> None:
    inputs = [image_input("images", 0, (96, 64)), image_input("images", 1, (50, 40), (0, 200, 0))]
    body = {
        "prompt": "merge them",
        "images": ["https://x/a.png", "https://x/b.png"],
        "input_fidelity": "high",
        "size": "1024x1536",
        "output_format": "jpeg",
    }
    ended = await harness.run((await harness.submit("gpt-image-1.5/edit", body, inputs=inputs)).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    img = decoded_image(await harness.result_bytes(ended))
    assert img.size == (1024, 1536) and img.format == "JPEG"
    served = fake.accepted[-1]
    assert served["images"] == [("image/png", (96, 64)), ("image/png", (50, 40))]
    assert served["input_fidelity"] == "high" and served["model"] == "gpt-image-1.5"


async def test_gpt_image_2_edit_omits_input_fidelity(harness: JobHarness, fake: FakeOpenAI) -> None:
    body = {"prompt": "bluer", "images": ["https://x/a.png"]}
    job = await harness.submit("gpt-image-2/edit", body, inputs=[image_input("images", 0)])
    ended = await harness.run(job.id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert "input_fidelity" not in fake.accepted[-1]


async def test_moderation_blocked_fails_moderated(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "moderated"
    ended = await harness.run((await harness.submit("gpt-image-2/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "moderated")
    assert fake.submissions == 1  # a refusal is final


async def test_answer_without_image_fails_no_media(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "no_media"
    ended = await harness.run((await harness.submit("gpt-image-1.5/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "no_media")
    assert fake.submissions == 1  # answered (and billed): never asked twice


async def test_rate_limit_is_waited_out_then_succeeds(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "rate_limited_once"
    ended = await harness.run((await harness.submit("gpt-image-1.5/generate", {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert fake.submissions == 2


async def test_rate_limit_carries_retry_after_ms(fake: FakeOpenAI) -> None:
    backend = make_backend(fake)
    fake.scenario, fake.retry_after = "rate_limited_once", "1.5"
    failure = await failure_of(backend, backend.submit(backend_job("gpt-image-2/generate", {"prompt": "x"})))
    assert (failure.failure, failure.retryable, failure.accepted, failure.retry_after) == (
        FailureCode.RATE_LIMITED,
        True,
        False,
        1.5,
    )


async def test_server_error_is_retried_then_succeeds(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "server_error_once"
    ended = await harness.run((await harness.submit("gpt-image-2/generate", {"prompt": "x"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert fake.submissions == 2


async def test_persistent_server_error_fails_upstream_error(harness: JobHarness, fake: FakeOpenAI) -> None:
    fake.scenario = "server_error_always"
    ended = await harness.run((await harness.submit("gpt-image-2/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "upstream_error")
    assert fake.submissions == harness.config.submit_attempts


async def test_no_answer_times_out_and_is_not_resubmitted(tmp_path: Path, fake: FakeOpenAI) -> None:
    async with harness_for(tmp_path, {"openai": make_backend(fake, timeout=0.3)}) as h:
        fake.scenario = "hang"
        ended = await h.run((await h.submit("gpt-image-2/generate", {"prompt": "x"})).id)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "timeout")
    assert fake.submissions == 1  # the upstream may have started it: sending it again could bill twice


async def test_a_refused_key_is_an_auth_failure(fake: FakeOpenAI) -> None:
    backend = make_backend(fake, key="sk-wrong")
    failure = await failure_of(backend, backend.submit(backend_job("gpt-image-2/generate", {"prompt": "x"})))
    assert failure.failure is FailureCode.AUTH and not failure.accepted


def test_request_fields_map_the_canonical_body() -> None:
    body = {"prompt": "p", "background": "transparent", "moderation": "low"}
    job = backend_job("gpt-image-1.5/generate", body)
    assert request_fields(job, "gpt-image-1.5") == {
        "model": "gpt-image-1.5",
        "prompt": "p",
        "n": 1,
        "quality": "medium",
        "size": "auto",
        "background": "transparent",
        "output_format": "png",
        "moderation": "low",
    }
    edit = backend_job("gpt-image-1.5/edit", {"prompt": "p", "images": ["https://x/a.png"]})
    assert request_fields(edit, "snapshot-id")["input_fidelity"] == "low"
    assert request_fields(edit, "snapshot-id")["model"] == "snapshot-id"


@pytest.mark.parametrize(("operation", "moderation", "refused"), [
    ("edit", "low", True),  # the multipart edit has no moderation: "low" cannot be honoured
    ("edit", "auto", False),
    ("generate", "low", False),
])  # fmt: skip
def test_edits_asking_for_low_moderation_are_refused_before_payment(
    operation: str, moderation: str, refused: bool
) -> None:
    backend = OpenAIImagesBackend("o", provider("openai-images", "http://127.0.0.1:9", "k"))
    ask = Ask("gpt-image-2", operation, {"prompt": "p", "moderation": moderation})
    assert (backend.refusal(ask) is not None) is refused


def test_edit_fields_carry_no_moderation() -> None:
    edit = backend_job("gpt-image-2/edit", {"prompt": "p", "images": ["https://x/a.png"]})
    assert "moderation" not in request_fields(edit, "gpt-image-2")


def test_settings_gate_support() -> None:
    ready = OpenAIImagesBackend("o", provider("openai-images", "http://127.0.0.1:9", "k"))
    keyless = OpenAIImagesBackend("o", provider("openai-images", "http://127.0.0.1:9", ""))
    assert ready.supports("gpt-image-2/edit") and not ready.supports("sora-2/generate")
    assert keyless.missing_settings() == ["api_key"] and not keyless.supports("gpt-image-2/edit")
    disabled = OpenAIImagesBackend(
        "o", ProviderSettings(type="openai-images", api_key=SecretStr("k"), enabled=False)
    )
    assert not disabled.supports("gpt-image-2/edit")


def test_built_from_the_factory_table() -> None:
    backend = build_backend("mine", provider("openai-images", "http://127.0.0.1:9", "k"))
    assert isinstance(backend, OpenAIImagesBackend) and backend.name == "mine"
