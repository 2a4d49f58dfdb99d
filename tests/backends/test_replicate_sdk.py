"""The Replicate adapter's requests, checked against the official SDK (`replicate`, a dev dependency) and
the models' published input schemas: for every catalog route a Replicate model serves, every sample request
the adapter does not refuse is captured (httpx.MockTransport) and compared with what
`Client().predictions.create` posts for the same model and input, and its input is validated
against the model version's bundled OpenAPI input schema."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
from replicate.client import Client

from studio402.backends.base import Ask, BackendJob
from studio402.backends.replicate import ReplicateBackend
from studio402.backends.replicate_models import MODELS
from studio402.catalog import CATALOG, Route
from tests.backends.fal_replicate_samples import sample_jobs
from tests.backends.upstream_support import provider
from tests.fakes.fake_server import API_KEY
from tests.fakes.replicate import published_models

BASE = "https://api.replicate.com/v1"
MAX_VERSION = published_models()["black-forest-labs/flux-2-max"]["version"]
# Route model -> the Replicate model serving it (the version-pinned form for one, to cover /v1/predictions).
TARGETS = {
    "veo-3.1": "google/veo-3.1",
    "veo-3.1-fast": "google/veo-3.1-fast",
    "nano-banana": "google/nano-banana-2",
    "nano-banana-pro": "google/nano-banana-pro",
    "flux-2-pro": "black-forest-labs/flux-2-pro",
    "flux-2-max": f"black-forest-labs/flux-2-max:{MAX_VERSION}",
    "seedance": "bytedance/seedance-2.0",
    "seedance-fast": "bytedance/seedance-2.0-fast",
}
PREDICTION = {
    "id": "p1",
    "model": "m/m",
    "status": "starting",
    "input": {},
    "urls": {"get": f"{BASE}/predictions/p1"},
}


def routes() -> Iterator[Route]:
    return (route for route in CATALOG if route.model in TARGETS)


def _capture(sink: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        sink.append(request)
        return httpx.Response(201, json={**PREDICTION, "version": "v"})

    return httpx.MockTransport(handler)


def ours(backend: ReplicateBackend, job: BackendJob) -> httpx.Request:
    sink: list[httpx.Request] = []
    backend._client = httpx.AsyncClient(base_url=BASE, transport=_capture(sink))
    asyncio.run(backend.submit(job))
    return sink[0]


def the_sdks(target: str, body: dict[str, Any]) -> httpx.Request:
    """What the SDK posts for the same target and input."""
    sink: list[httpx.Request] = []
    client = Client(api_token=API_KEY, transport=_capture(sink))
    model, _, version = target.partition(":")
    if version:
        client.predictions.create(version=body["version"], input=body["input"])
    else:
        client.models.predictions.create(model=model, input=body["input"])
    return sink[0]


@pytest.mark.parametrize("route", list(routes()), ids=lambda r: r.key)
def test_requests_match_the_sdk_and_the_published_schema(route: Route) -> None:
    target = TARGETS[route.model]
    backend = ReplicateBackend("replicate", provider("replicate", BASE, models={route.model: target}))
    schema = published_models()[target.partition(":")[0]]["input"]
    checked = 0
    for job in sample_jobs(route):
        if backend.refusal(Ask.of_job(job)) is not None:
            continue  # never sent: refused before payment
        sent = ours(backend, job)
        body = json.loads(sent.content)
        expected = the_sdks(target, body)
        assert (sent.method, sent.url.path) == (expected.method, expected.url.path), job.params
        assert body == json.loads(expected.content)  # the SDK sends exactly {input} / {version, input}
        assert "prefer" not in sent.headers  # never the synchronous mode
        issues = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(body["input"])]
        assert not issues, (job.params, body["input"], issues)
        checked += 1
    assert checked > 0


def test_the_sdk_create_takes_what_we_send() -> None:
    """The create methods' parameters: the SDK names `input` (and `version`), nothing more is needed."""
    client = Client(api_token=API_KEY)
    assert {"version", "input"} <= set(inspect.signature(client.predictions.create).parameters)
    assert {"model", "input"} <= set(inspect.signature(client.models.predictions.create).parameters)
    assert {"deployment", "input"} <= set(inspect.signature(client.deployments.predictions.create).parameters)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_input_lists_match_the_bundled_schemas(model: str) -> None:
    assert MODELS[model].inputs.fields == set(published_models()[model]["input"]["properties"])
