"""The Seedance adapter's requests checked against the official BytePlus Ark SDK (byteplus-python-sdk-v2[ark],
a dev dependency): for every catalog route it serves and every enum combination the catalog accepts, each
parameter is one of `content_generation.tasks.create`'s and each content item validates against the SDK's
CreateTaskContentParam TypedDicts; and the SDK itself, given our body, posts the same JSON."""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx
import pytest
from byteplussdkarkruntime import AsyncArk
from byteplussdkarkruntime.resources.content_generation.tasks import AsyncTasks
from byteplussdkarkruntime.types.content_generation.create_task_content_param import CreateTaskContentParam
from pydantic import TypeAdapter

from studio402.backends.base import BackendFailure, FailureCode
from studio402.backends.byteplus import SeedanceBackend
from tests.backends.sdk_support import route_jobs
from tests.backends.upstream_support import fake_fixtures, provider, sent
from tests.fakes.byteplus import FakeArk
from tests.fakes.fake_server import API_KEY

ROUTES = sorted(SeedanceBackend.routes or ())


def _undecorated(method: Any) -> Any:
    """The SDK wraps `create` (an API-key check) without functools.wraps: its function is in the closure."""
    found = [c.cell_contents for c in method.__closure__ or () if inspect.isfunction(c.cell_contents)]
    return found[0] if found else method


CREATE_PARAMETERS = frozenset(inspect.signature(_undecorated(AsyncTasks.create)).parameters) - {"self"}
CONTENT = TypeAdapter(list[CreateTaskContentParam])


def seedance() -> SeedanceBackend:
    return SeedanceBackend("byteplus", provider("byteplus", "https://ark.test/api/v3"))


@pytest.mark.parametrize("route", ROUTES)
async def test_every_request_validates_against_the_sdk_types(route: str) -> None:
    backend, checked = seedance(), 0
    for job in route_jobs(route):
        try:
            body = backend._body(job)
        except BackendFailure as exc:  # e.g. a 4K upscale: refused before payment, never sent
            assert exc.failure is FailureCode.UNAVAILABLE and not exc.accepted
            continue
        assert set(body) <= CREATE_PARAMETERS, set(body) - CREATE_PARAMETERS
        CONTENT.validate_python(body["content"], strict=True)
        checked += 1
    await backend.aclose()
    assert checked


@pytest.mark.parametrize("route", ROUTES)
async def test_the_sdk_posts_our_body(route: str) -> None:
    backend = seedance()
    body = backend._body(next(j for j in route_jobs(route) if not j.params.get("upscaleResolution")))
    await backend.aclose()
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "cgt-1"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    client = AsyncArk(base_url="https://ark.test/api/v3", api_key="k", http_client=http)
    answer = await client.content_generation.tasks.create(**body)
    await http.aclose()
    assert answer.id == "cgt-1"
    assert seen[0].url.path == "/api/v3/contents/generations/tasks"
    posted = {k: v for k, v in json.loads(seen[0].read()).items() if v is not None}  # unset ones go as null
    assert posted == body


server, fake = fake_fixtures(FakeArk)


async def test_the_strict_fake_takes_what_the_sdk_posts(fake: FakeArk) -> None:
    """The SDK posts every unset parameter as null: the fake must take that as the real API does."""
    backend = seedance()
    body = backend._body(next(j for j in route_jobs("seedance/i2v") if not j.params.get("upscaleResolution")))
    await backend.aclose()
    client = AsyncArk(base_url=f"{fake.base_url}/api/v3", api_key=API_KEY)
    answer = await client.content_generation.tasks.create(**body)
    await client.close()
    assert answer.id in fake.tasks and sent(fake) == body
