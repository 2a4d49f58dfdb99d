"""The job routes: SIGN-IN-WITH-X rules, listing, deleting, restarts and server-sent events."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.http.clients import x402HttpxClient

from studio402.backends.base import FailureCode
from studio402.chain.devnet import Devnet
from studio402.sdk.client import x402_client
from tests.devnet_fixture import new_payer
from tests.fakes.scripted import ScriptedAsyncBackend, ScriptedBackend, only
from tests.paid_support import PaidServer, paid_job, running_server
from tests.siwx_support import iso, sign_in


async def siwx(server: PaidServer, account: LocalAccount, path: str, **info: Any) -> str:
    return sign_in(account, server.base, path, server.wiring.siwx.chain_ids[0], **info)


@pytest.fixture
async def owned_job(paid_server: PaidServer) -> tuple[PaidServer, LocalAccount, str]:
    payer = await new_payer(paid_server.devnet, 1_000_000)
    return paid_server, Account.from_key(payer.key), await paid_job(paid_server, payer.key)


async def test_siwx_rules_on_the_job_route(owned_job: tuple[PaidServer, LocalAccount, str]) -> None:
    server, owner, job_id = owned_job
    path = f"/api/jobs/{job_id}"
    now = datetime.now(UTC)
    cases: list[tuple[str, str, dict[str, Any], int, str | None]] = [
        ("own wallet", "owner", {}, 200, None),
        ("another wallet", "other", {}, 404, None),
        (
            "expired",
            "owner",
            {"issuedAt": iso(now - timedelta(minutes=2)), "expirationTime": iso(now - timedelta(minutes=1))},
            402,
            "siwx_expired",
        ),
        (
            "issued in the future",
            "owner",
            {
                "issuedAt": iso(now + timedelta(minutes=10)),
                "expirationTime": iso(now + timedelta(minutes=15)),
            },
            402,
            "siwx_issued_in_future",
        ),
        (
            "too old",
            "owner",
            {"issuedAt": iso(now - timedelta(minutes=10)), "expirationTime": iso(now + timedelta(minutes=5))},
            402,
            "siwx_too_old",
        ),
        ("wrong domain", "owner", {"domain": "evil.example"}, 402, "siwx_wrong_domain"),
        ("wrong uri", "owner", {"uri": server.base + "/api/jobs/job_other"}, 402, "siwx_wrong_uri"),
    ]
    other = Account.create()
    async with httpx.AsyncClient(base_url=server.base) as http:
        for label, who, info, status, code in cases:
            header = await siwx(server, owner if who == "owner" else other, path, **info)
            response = await http.get(path, headers={"SIGN-IN-WITH-X": header})
            assert response.status_code == status, (label, response.text)
            if code is not None:
                assert response.json()["code"] == code, label
                challenge = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
                assert challenge["accepts"] == [] and "sign-in-with-x" in challenge["extensions"], label
        tampered = json.loads(base64.b64decode(await siwx(server, owner, path)))
        tampered["signature"] = (
            tampered["signature"][:-4]
            + ("00" if tampered["signature"][-4:-2] != "00" else "11")
            + tampered["signature"][-2:]
        )
        response = await http.get(
            path, headers={"SIGN-IN-WITH-X": base64.b64encode(json.dumps(tampered).encode()).decode()}
        )
        assert response.status_code == 402 and response.json()["code"] == "siwx_bad_signature"
        missing = await http.get(path)
        assert missing.status_code == 402 and missing.json()["code"] == "siwx_missing"
        unknown = await http.get(
            "/api/jobs/job_nope", headers={"SIGN-IN-WITH-X": await siwx(server, owner, "/api/jobs/job_nope")}
        )
        assert unknown.status_code == 404


async def test_list_and_delete(devnet: Devnet, tmp_path: Path) -> None:
    payer, stranger = await new_payer(devnet, 2_000_000), await new_payer(devnet, 1_000_000)
    backend = ScriptedBackend(fail=FailureCode.MODERATED)
    async with running_server(devnet, tmp_path / "d", registry=only(backend)) as server:
        failed = await paid_job(server, payer.key, {"prompt": "one"})
        for _ in range(200):  # let it fail before the backend is repaired
            job = await server.wiring.jobs.get(failed)
            if job is not None and job.status.is_terminal:
                break
            await asyncio.sleep(0.02)
        backend.fail = None
        await paid_job(server, stranger.key, {"prompt": "not mine"})
        await asyncio.sleep(0.5)
        done = await paid_job(server, payer.key, {"prompt": "two"})
        async with x402HttpxClient(x402_client(payer.key), base_url=server.base, timeout=60) as http:
            for _ in range(100):
                listed = (await http.get("/api/jobs?limit=10")).json()["jobs"]
                if [j["status"] for j in listed] == ["complete", "failed"]:
                    break
                await asyncio.sleep(0.05)
            assert [j["jobId"] for j in listed] == [done, failed]  # newest first, only mine
            page = (await http.get("/api/jobs?limit=1")).json()
            assert len(page["jobs"]) == 1 and page["nextCursor"] is not None
            rest = (await http.get(f"/api/jobs?limit=1&before={page['nextCursor']}")).json()
            assert [j["jobId"] for j in rest["jobs"]] == [failed]
            only_failed = (await http.get("/api/jobs?status=failed")).json()["jobs"]
            assert [j["jobId"] for j in only_failed] == [failed]
            assert (await http.get("/api/jobs?status=weird")).status_code == 400
            assert (await http.delete(f"/api/jobs/{done}")).status_code == 409  # only failed jobs
            assert (await http.delete(f"/api/jobs/{failed}")).status_code == 200
            assert (await http.get(f"/api/jobs/{failed}")).status_code == 404
            assert [j["jobId"] for j in (await http.get("/api/jobs")).json()["jobs"]] == [done]


@pytest.mark.parametrize("kind", ["synchronous", "asynchronous"])
async def test_restart_while_loading_completes_the_job_once(
    devnet: Devnet, tmp_path: Path, kind: str
) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = tmp_path / "d"
    first: Any = (
        ScriptedBackend("upstream", gate=asyncio.Event())
        if kind == "synchronous"
        else ScriptedAsyncBackend("upstream")
    )
    async with running_server(devnet, data, registry=only(first)) as server:
        job_id = await paid_job(server, payer.key)
        for _ in range(200):
            job = await server.wiring.jobs.get(job_id)
            if (
                job is not None
                and job.status.value == "loading"
                and (kind == "synchronous" or job.upstream_id)
            ):
                break
            await asyncio.sleep(0.02)
        assert job is not None and job.status.value == "loading"
    second: Any = ScriptedBackend("upstream") if kind == "synchronous" else ScriptedAsyncBackend("upstream")
    second.gate.set() if kind == "asynchronous" else None
    async with running_server(devnet, data, registry=only(second)) as server:
        for _ in range(400):
            job = await server.wiring.jobs.get(job_id)
            if job is not None and job.status.is_terminal:
                break
            await asyncio.sleep(0.02)
    assert job is not None and job.attempts == 2
    if kind == "asynchronous":  # resumed polling the persisted upstream id: never resubmitted
        assert job.status.value == "complete"
        assert first.submissions == 1 and second.submissions == 0 and second.polls >= 1
    else:  # no id to resume and the upstream may have run it: never submitted twice, refunded instead
        assert (job.status.value, job.error_code) == ("failed", "upstream_error")
        assert first.submissions == 1 and second.submissions == 0


async def test_events_stream_pending_loading_complete(devnet: Devnet, tmp_path: Path) -> None:
    payer = await new_payer(devnet, 2_000_000)
    account = Account.from_key(payer.key)
    blocker, ours = asyncio.Event(), asyncio.Event()

    class TwoGates(ScriptedBackend):
        async def submit(self, job: Any) -> Any:
            self.gate = blocker if job.params["prompt"] == "blocker" else ours
            return await super().submit(job)

    async with running_server(
        devnet, tmp_path / "d", registry=only(TwoGates("upstream")), overrides={"jobs.workers": 1}
    ) as server:
        await paid_job(server, payer.key, {"prompt": "blocker"})
        job_id = await paid_job(server, payer.key, {"prompt": "ours"})
        path = f"/api/jobs/{job_id}/events"
        seen: list[str] = []
        async with (
            httpx.AsyncClient(base_url=server.base, timeout=30) as http,
            http.stream("GET", path, headers={"SIGN-IN-WITH-X": await siwx(server, account, path)}) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    status = json.loads(line[6:])["status"]
                    if not seen or seen[-1] != status:
                        seen.append(status)
                    if status == "pending":
                        blocker.set()
                    elif status == "loading":
                        ours.set()
    assert seen == ["pending", "loading", "complete"]
