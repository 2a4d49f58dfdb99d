"""A request the route's backends cannot serve is refused with a 400 before any price is asked, and the
job runner never submits to a backend that refuses (it would bill upstream, then fail)."""

from __future__ import annotations

from pathlib import Path

from studio402.backends.registry import BackendRegistry
from studio402.chain.devnet import Devnet
from tests.devnet_fixture import new_payer
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import BODY, GENERATE, pay_and_wait, running_server, transfers_from


async def test_nobody_pays_for_what_no_backend_can_serve(devnet: Devnet, tmp_path: Path) -> None:
    refuser = ScriptedBackend("narrow", refuse="prompts over 800 characters are cut")
    async with (
        running_server(devnet, tmp_path / "d", registry=only(refuser)) as server,
        server.client() as http,
    ):
        for path in (GENERATE, "/api/quote/nano-banana/generate"):
            response = await http.post(path, json=BODY)
            assert response.status_code == 400, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "backend_cannot_serve"
            assert "800 characters" in response.json()["detail"]
            assert "PAYMENT-REQUIRED" not in response.headers
    assert refuser.submissions == 0


async def test_the_runner_skips_a_backend_that_refuses(devnet: Devnet, tmp_path: Path) -> None:
    refuser, able = ScriptedBackend("narrow", refuse="no"), ScriptedBackend("able")
    registry = BackendRegistry({"narrow": refuser, "able": able}, ["narrow", "able"])
    payer = await new_payer(devnet, 1_000_000)
    async with running_server(devnet, tmp_path / "d", registry=registry) as server:
        job = await pay_and_wait(server, payer.key, GENERATE, BODY)
    assert job["status"] == "complete", job
    assert (refuser.submissions, able.submissions) == (0, 1)
    assert len(await transfers_from(devnet, payer.address)) == 1
