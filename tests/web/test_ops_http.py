"""CORS, /metrics and the /admin API over HTTP, against a real server paying on the devnet."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

import studio402.api.ops.metrics as metrics_module
from studio402.chain.devnet import Devnet
from studio402.db.ops_stats import OpsStats, read_stats
from tests.devnet_fixture import new_payer
from tests.paid_support import GENERATE, pay_and_wait, running_server

ORIGIN = "https://app.example.com"
TOKEN = "s3cret-admin-token"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_cors_preflight_and_exposed_payment_headers(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d", overrides={"server.cors_origins": [ORIGIN]}) as server:
        async with server.client() as http:
            pre = await http.options(
                GENERATE,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "payment-signature, content-type, sign-in-with-x",
                },
            )
            assert pre.status_code == 200
            assert pre.headers["access-control-allow-origin"] == ORIGIN
            allowed = pre.headers["access-control-allow-headers"].lower()
            for header in (
                "payment-signature",
                "x-payment",
                "sign-in-with-x",
                "authorization",
                "content-type",
            ):
                assert header in allowed
            challenge = await http.post(GENERATE, json={"prompt": "x"}, headers={"Origin": ORIGIN})
            assert challenge.status_code == 402
            exposed = challenge.headers["access-control-expose-headers"].lower()
            for header in ("payment-required", "payment-response", "www-authenticate", "payment-receipt"):
                assert header in exposed
            other = await http.options(
                GENERATE,
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            )
            assert "access-control-allow-origin" not in other.headers


async def test_no_cors_origins_means_no_cors_headers(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d") as server, server.client() as http:
        response = await http.post(GENERATE, json={"prompt": "x"}, headers={"Origin": ORIGIN})
        assert response.status_code == 402
        assert "access-control-allow-origin" not in response.headers


async def test_admin_is_absent_without_a_token(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d") as server, server.client() as http:
        for path in ("/admin", "/admin/api/summary", "/admin/api/audit"):
            response = await http.get(path, headers={"Authorization": "Bearer anything"})
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_admin_token_checked(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d", overrides={"admin.token": TOKEN}) as server:
        async with server.client() as http:
            assert (await http.get("/admin")).status_code == 200  # the page shell holds no data
            missing = await http.get("/admin/api/summary")
            wrong = await http.get("/admin/api/summary", headers={"Authorization": "Bearer nope"})
            assert (missing.status_code, missing.json()["code"]) == (401, "admin_token_missing")
            assert (wrong.status_code, wrong.json()["code"]) == (401, "admin_token_invalid")
            assert wrong.headers["content-type"].startswith("application/problem+json")
            ok = await http.get("/admin/api/summary", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert ok.json()["revenueMicros"] == "0"


async def test_a_paid_job_moves_metrics_and_admin_figures(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 5_000_000)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    overrides = {"admin.token": TOKEN, "admin.metrics_cache_seconds": 0}
    async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        async with server.client() as http:
            before = (await http.get("/metrics")).text
            network = devnet.info.network
            assert sample(before, "studio402_paid_requests_total", network=network) == 0
            job = await pay_and_wait(server, payer.key, GENERATE, {"prompt": "a red kite"})
            assert job["status"] == "complete"
            metrics = await http.get("/metrics")
            assert metrics.headers["content-type"].startswith("text/plain")
            text = metrics.text
            assert sample(text, "studio402_paid_requests_total", network=network) == 1
            assert sample(text, "studio402_settlements", network=network, outcome="settled") == 1
            micros = sample(text, "studio402_settled_micros_total", network=network)
            assert micros > 0
            assert sample(text, "studio402_jobs", status="complete", backend="preview") == 1
            assert sample(text, "studio402_upstream_latency_seconds_count", backend="preview") == 1
            assert (
                sample(text, "studio402_upstream_latency_seconds_bucket", backend="preview", le="+Inf") == 1
            )
            assert sample(text, "studio402_reconciler_lag_seconds") == 0
            summary = (await http.get("/admin/api/summary", headers=auth)).json()
            assert int(summary["revenueMicros"]) == micros
            assert [(r["model"], r["payments"]) for r in summary["revenue"]] == [("nano-banana", 1)]
            assert summary["jobs"] == {"complete": 1}
            assert summary["backends"][0]["backend"] == "preview"
            assert summary["backends"][0]["healthy"] is True
            assert summary["backends"][0]["lastHour"] == {"complete": 1, "failed": 0}
            assert summary["backends"][0]["failureRate"] == 0
            audit = (await http.get("/admin/api/audit", headers=auth)).json()
            assert audit["ran"] is True
            assert audit["ok"] is True, audit


async def test_metrics_token_checked(devnet: Devnet, tmp_path: Path) -> None:
    overrides = {"admin.metrics_token": "scraper-token", "admin.token": TOKEN}
    async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        async with server.client() as http:
            missing = await http.get("/metrics")
            admins = {"Authorization": f"Bearer {TOKEN}"}  # the admin token does not open /metrics
            wrong = await http.get("/metrics", headers=admins)
            assert (missing.status_code, missing.json()["code"]) == (401, "metrics_token_missing")
            assert (wrong.status_code, wrong.json()["code"]) == (401, "metrics_token_invalid")
            assert "scraper-token" not in missing.text + wrong.text
            ok = await http.get("/metrics", headers={"Authorization": "Bearer scraper-token"})
            assert ok.status_code == 200 and "studio402_jobs" in ok.text


async def test_a_flood_of_scrapes_reads_the_database_once_per_period(
    devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/metrics is unpaid and may be open: a flood must not turn into a flood of full-table reads."""
    reads = 0
    real = read_stats

    async def counted(db: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real(db)

    monkeypatch.setattr(metrics_module, "read_stats", counted)
    payer = await new_payer(devnet, 5_000_000)
    overrides = {"admin.metrics_cache_seconds": 600}
    async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
        async with server.client() as http:
            scrapes = await asyncio.gather(*(http.get("/metrics") for _ in range(30)))
            assert {r.status_code for r in scrapes} == {200}
            assert reads == 1
            await pay_and_wait(server, payer.key, GENERATE, {"prompt": "a red kite"})
            later = await http.get("/metrics")  # within the period: the same rendering
            assert sample(later.text, "studio402_paid_requests_total", network=devnet.info.network) == 0
            assert reads == 1


async def test_the_rendering_is_read_again_after_its_period() -> None:
    now = 0.0
    reads = 0

    async def fake_read(db: Any) -> Any:
        nonlocal reads
        reads += 1
        return OpsStats()

    cache = metrics_module.RenderCache(2.0, clock=lambda: now)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_module, "read_stats", fake_read)
        await cache.get(None)  # type: ignore[arg-type]
        now = 1.9
        await cache.get(None)  # type: ignore[arg-type]
        assert reads == 1
        now = 2.0
        await cache.get(None)  # type: ignore[arg-type]
        assert reads == 2


async def test_studio_page_and_assets_served(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d") as server, server.client() as http:
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        scripts = re.findall(r'src="(/assets/[^"]+\.js)"', page.text)
        assert scripts
        asset = await http.get(scripts[0])
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        assert (await http.get("/api/health")).status_code == 200
