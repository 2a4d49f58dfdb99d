"""`studio402 backends check`: a retired upstream says so per route, and `--probe` makes one cheap
authenticated read per configured provider (against the strict fakes, or httpx.MockTransport for the
adapters whose fakes other tests own), reporting the HTTP status and never the key."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.factory import build_backend
from studio402.backends.openai_videos import OpenAIVideosBackend
from studio402.backends.preview.backend import PreviewBackend
from studio402.backends.registry import BackendRegistry
from studio402.catalog import CATALOG
from studio402.cli.backends import check_routes, probe_backends
from studio402.config import ProviderSettings
from tests.fakes import bfl, openai
from tests.fakes.bfl import FakeBfl
from tests.fakes.byteplus import FakeArk
from tests.fakes.dashscope import FakeDashScope
from tests.fakes.fake_server import API_KEY
from tests.fakes.openai import FakeOpenAI

CLI = str(Path(sys.executable).with_name("studio402"))
SECRET = "sk-do-not-print-0123456789"


def settings(kind: str, base_url: str, key: str, **options: Any) -> ProviderSettings:
    return ProviderSettings.model_validate(
        {"type": kind, "api_key": key, "base_url": base_url, "options": options}
    )


def test_a_retired_upstream_says_so_on_its_routes() -> None:
    sora = OpenAIVideosBackend("sora", settings("openai-videos", "http://127.0.0.1:9", "k"))
    registry = BackendRegistry({"sora": sora, "preview": PreviewBackend(CATALOG)}, ["sora", "preview"])
    rows = {r["route"]: r for r in check_routes(registry)}
    for route in ("sora-2/generate", "sora-2-pro/generate"):
        assert rows[route]["servedBy"] == "preview"  # off by default: the chain falls to the next backend
        assert rows[route]["notes"] == [
            "sora: retired upstream on 2026-09-24; off unless options.allow_retired = true"
        ]
        assert rows[route]["backends"][0]["note"] == rows[route]["notes"][0]
    assert "notes" not in rows["gpt-image-2/generate"]  # only the routes of the retired API


@pytest.fixture(scope="module")
async def fakes() -> AsyncIterator[dict[str, Any]]:
    fake_bfl, fake_openai, fake_ds, fake_ark = FakeBfl(), FakeOpenAI(), FakeDashScope(), FakeArk()
    async with fake_bfl.running(), fake_openai.running(), fake_ds.running(), fake_ark.running():
        yield {
            "bfl": ("bfl", fake_bfl.url, bfl.API_KEY),
            "openai-images": ("openai-images", f"{fake_openai.url}/v1", openai.API_KEY),
            "openai-videos": ("openai-videos", f"{fake_openai.url}/v1", openai.API_KEY),
            "dashscope": ("dashscope", f"{fake_ds.base_url}/api/v1", API_KEY),
            "byteplus": ("byteplus", f"{fake_ark.base_url}/api/v3", API_KEY),
            "fakes": (fake_bfl, fake_openai, fake_ds, fake_ark),
        }


@pytest.mark.parametrize("name", ["bfl", "openai-images", "openai-videos", "dashscope", "byteplus"])
async def test_probe_against_the_fakes(fakes: dict[str, Any], name: str) -> None:
    kind, url, key = fakes[name]
    good, bad = (
        build_backend(name, settings(kind, url, key)),
        build_backend("wrong", settings(kind, url, SECRET)),
    )
    registry = BackendRegistry({name: good, "wrong": bad, "preview": PreviewBackend(CATALOG)}, ["preview"])
    try:
        probes = {p["backend"]: p for p in await probe_backends(registry)}
    finally:
        await registry.aclose()
    assert set(probes) == {name, "wrong"}  # the local preview has nothing to probe
    assert (probes[name]["ok"], probes[name]["status"]) == (True, 200), probes[name]
    assert (probes["wrong"]["ok"], probes["wrong"]["status"]) == (False, 401)
    assert SECRET not in json.dumps(probes)


# The other adapters' probes, through httpx.MockTransport: (adapter type, options, the URL it must read, the
# header that carries the key, the value the header must have).
MOCKED = [
    ("xai", {}, "https://upstream.test/models", "authorization", f"Bearer {SECRET}"),
    ("gemini", {}, "https://upstream.test/v1beta/models?pageSize=1", "x-goog-api-key", SECRET),
    (
        "vertex-veo",
        {"project": "p", "location": "us-central1"},
        "https://upstream.test/v1beta1/publishers/google/models?pageSize=1",
        "x-goog-api-key",  # an api_key is an Agent Platform key (express mode), sent as Google expects
        SECRET,
    ),
    (
        "fal",
        {},
        "https://api.fal.ai/v1/models/pricing?endpoint_id=fal-ai/flux/dev",
        "authorization",
        f"Key {SECRET}",
    ),
    ("replicate", {}, "https://upstream.test/account", "authorization", f"Bearer {SECRET}"),
]


def answering(
    url: str, header: str, value: str, seen: list[str]
) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if str(request.url) != url:
            return httpx.Response(404)
        ok = request.headers.get(header) == value
        return httpx.Response(200 if ok else 401, json={} if ok else {"error": f"bad key {value}"})

    return handle


@pytest.mark.parametrize(("kind", "options", "url", "header", "value"), MOCKED)
async def test_probe_of_each_other_adapter(
    kind: str, options: dict[str, Any], url: str, header: str, value: str
) -> None:
    seen: list[str] = []
    backend = build_backend(kind, settings(kind, "https://upstream.test", SECRET, **options))
    assert isinstance(backend, UpstreamAdapter)
    await backend.aclose()
    transport = httpx.MockTransport(answering(url, header, value, seen))
    backend._client = httpx.AsyncClient(base_url="https://upstream.test", transport=transport)
    try:
        result = await backend.probe()
    finally:
        await backend.aclose()
    assert seen == [url]
    assert (result.ok, result.status) == (True, 200), result
    assert SECRET not in result.detail


async def test_an_unreachable_upstream_or_a_missing_key_is_a_failed_probe() -> None:
    down = build_backend("bfl", settings("bfl", "http://127.0.0.1:9", "k"))
    keyless = build_backend("xai", ProviderSettings(type="xai"))
    assert isinstance(down, UpstreamAdapter) and isinstance(keyless, UpstreamAdapter)
    try:
        unreachable, no_key = await down.probe(), await keyless.probe()
    finally:
        await down.aclose()
        await keyless.aclose()
    assert (unreachable.ok, unreachable.status) == (False, None) and "unreachable" in unreachable.detail
    assert (no_key.ok, no_key.status) == (False, None) and "no api_key" in no_key.detail


async def test_the_cli_probes_only_when_asked(fakes: dict[str, Any], tmp_path: Path) -> None:
    _, url, key = fakes["bfl"]
    fake_bfl = fakes["fakes"][0]
    fake_bfl.reset()
    config = tmp_path / "c.toml"
    config.write_text(
        '[backends]\ndefault = ["preview"]\n'
        f'[backends.providers.bfl]\ntype = "bfl"\napi_key = "{key}"\nbase_url = "{url}"\n'
        f'[backends.providers.wrong]\ntype = "bfl"\napi_key = "{SECRET}"\nbase_url = "{url}"\n'
    )

    async def run(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            CLI, "backends", "check", "--config", str(config), "--data-dir", "data", *args,
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode or 0, out.decode(), err.decode()

    code, out, _ = await run()
    assert code == 0 and isinstance(json.loads(out), list)  # no probe: no request upstream
    assert not fake_bfl.hits("/v1/credits")
    code, out, err = await run("--probe")
    probes = {p["backend"]: p for p in json.loads(out)["probes"]}
    assert code == 1  # one provider's credentials do not work
    assert probes["bfl"] == {"backend": "bfl", "ok": True, "status": 200, "detail": "HTTP 200 OK"}
    assert (probes["wrong"]["ok"], probes["wrong"]["status"]) == (False, 401)
    assert SECRET not in out + err
    assert len(fake_bfl.hits("/v1/credits")) == 2
