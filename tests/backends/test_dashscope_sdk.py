"""The Wan adapter's requests checked against the official DashScope SDK (dashscope, a dev dependency): for
every catalog route it serves and every enum combination, each field we send is a parameter of the SDK's
`VideoSynthesis.async_call`, and the SDK itself, given our fields, posts the same body (to the strict
fake)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import dashscope
import pytest
from dashscope import VideoSynthesis

from studio402.backends.dashscope import WanBackend
from tests.backends.sdk_support import route_jobs
from tests.backends.upstream_support import fake_fixtures, provider, sent
from tests.fakes.dashscope import FakeDashScope
from tests.fakes.fake_server import API_KEY

ROUTES = sorted(WanBackend.routes or ())
SDK_PARAMETERS = frozenset(inspect.signature(VideoSynthesis.async_call).parameters)

server, fake = fake_fixtures(FakeDashScope)


@pytest.fixture
def sdk_base(fake: FakeDashScope) -> Iterator[str]:
    """The SDK's module-wide base URL, pointed at the fake for one test."""
    before = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{fake.base_url}/api/v1"
    yield dashscope.base_http_api_url
    dashscope.base_http_api_url = before


def backend(base: str) -> WanBackend:
    return WanBackend("dashscope", provider("dashscope", base))


@pytest.mark.parametrize("route", ROUTES)
async def test_every_field_is_a_parameter_of_the_sdk(route: str) -> None:
    wan = backend("http://127.0.0.1:9/api/v1")
    jobs = list(route_jobs(route))
    assert jobs
    for job in jobs:
        body = await wan._body(job)
        fields = {*body["input"], *body["parameters"]}
        assert fields <= SDK_PARAMETERS, fields - SDK_PARAMETERS
    await wan.aclose()


@pytest.mark.parametrize("route", ROUTES)
async def test_the_sdk_posts_our_body(route: str, fake: FakeDashScope, sdk_base: str) -> None:
    wan = backend(sdk_base)
    job = next(route_jobs(route))
    ours = await wan._body(job)
    await wan.aclose()
    kwargs: dict[str, Any] = {**ours["input"], **ours["parameters"]}
    answer = await asyncio.to_thread(
        VideoSynthesis.async_call, model=ours["model"], api_key=API_KEY, **kwargs
    )
    assert answer.status_code == 200, (answer.code, answer.message)
    theirs = sent(fake)
    assert theirs["input"].pop("extend_prompt") is True  # deprecated; the SDK always sends it
    assert theirs["input"].pop("function") == "video-synthesis"  # the SDK names the endpoint's function
    assert theirs == ours
    assert fake.headers_seen[-1]["x-dashscope-async"] == "enable"
