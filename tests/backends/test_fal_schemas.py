"""The fal adapter's requests, checked against fal's published endpoint schemas. fal's SDK (`fal_client`) has
no request types: `submit(application, arguments: dict)` posts any dict to `queue.fal.run/{application}`,
so there is nothing of the SDK to validate a body against. Instead, for every catalog route a fal endpoint
serves, every sample request the adapter does not refuse is captured (httpx.MockTransport): it must go to the
endpoint of its mode and validate against that endpoint's bundled input schema (tests/fakes/schemas/fal.json,
written from fal's model pages), and the adapter's field lists must be those schemas' own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import jsonschema_rs
import pytest

from studio402.backends.base import Ask, BackendJob
from studio402.backends.fal import FalBackend
from studio402.backends.fal_endpoints import ENDPOINTS
from studio402.catalog import CATALOG, Route
from tests.backends.fal_replicate_samples import sample_jobs
from tests.backends.upstream_support import provider
from tests.fakes.fal import published_schemas

BASE = "https://queue.fal.run"
# Route model -> the fal base endpoint serving it (modes add their own suffix).
TARGETS = {
    "veo-3.1": "fal-ai/veo3.1",
    "veo-3.1-fast": "fal-ai/veo3.1/fast",
    "nano-banana": "fal-ai/nano-banana-2",
    "nano-banana-pro": "fal-ai/nano-banana-pro",
    "seedance": "bytedance/seedance-2.0",
    "seedance-fast": "bytedance/seedance-2.0/fast",
}


def routes() -> Iterator[Route]:
    return (route for route in CATALOG if route.model in TARGETS)


def captured(backend: FalBackend, job: BackendJob) -> httpx.Request:
    sink: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sink.append(request)
        return httpx.Response(200, json={"request_id": "r1", "status": "IN_QUEUE"})

    backend._client = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(handler))
    asyncio.run(backend.submit(job))
    return sink[0]


@pytest.mark.parametrize("route", list(routes()), ids=lambda r: r.key)
def test_requests_validate_against_the_endpoint_schema(route: Route) -> None:
    base = TARGETS[route.model]
    backend = FalBackend("fal", provider("fal", BASE, models={route.model: base}))
    endpoints: set[str] = set()
    for job in sample_jobs(route):
        if backend.refusal(Ask.of_job(job)) is not None:
            continue  # never sent: refused before payment
        sent = captured(backend, job)
        endpoint = sent.url.path.strip("/")
        assert endpoint.startswith(base), endpoint
        body = json.loads(sent.content)
        schema = published_schemas()[endpoint]
        issues = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(body)]
        assert not issues, (job.params, endpoint, body, issues)
        endpoints.add(endpoint)
    assert endpoints  # at least one request of the route was checked


def test_every_mode_endpoint_is_reached() -> None:
    """The samples reach every endpoint the adapter knows (so each schema above is exercised)."""
    reached: set[str] = set()
    for route in routes():
        backend = FalBackend("fal", provider("fal", BASE, models={route.model: TARGETS[route.model]}))
        for job in sample_jobs(route):
            if backend.refusal(Ask.of_job(job)) is None:
                reached.add(captured(backend, job).url.path.strip("/"))
    assert reached == set(ENDPOINTS)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_field_lists_are_the_published_ones(endpoint: str) -> None:
    assert ENDPOINTS[endpoint].fields == set(published_schemas()[endpoint]["properties"])


def test_every_bundled_schema_has_an_adapter_entry() -> None:
    assert set(published_schemas()) == set(ENDPOINTS)
