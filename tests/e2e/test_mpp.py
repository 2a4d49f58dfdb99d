"""MPP `charge` on the Tempo devnet through the real generate route: the unmodified pympp client pays the
402's `WWW-Authenticate: Payment` challenge; the engine's ledger rules hold as for x402."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from eth_account import Account
from mpp import Challenge, Receipt
from mpp.client.transport import PaymentTransport
from mpp.methods.tempo import TempoAccount
from mpp.methods.tempo import client as tempo_client
from mpp.runtime import CredentialParams

from studio402.app.paid_request import content_digest
from studio402.chain.devnet import Devnet
from studio402.chain.tempo_devnet import PATH_USD
from studio402.cli.ledger import run_audit
from studio402.sdk.client import generate_mpp
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import BODY, GENERATE, running_server


class Recording(httpx.AsyncHTTPTransport):
    """The wire under the paying transport: what the client really sent (its retry carries the credential)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await super().handle_async_request(request)


PRICE = 67_000  # nano-banana 1K, in micro-dollars = pathUSD base units


async def test_pympp_pays_a_generate_route_once_and_a_replay_gets_the_same_job(
    devnet: Devnet, tmp_path: Path
) -> None:
    overrides = {"devnet.tempo": True}
    async with running_server(
        devnet, tmp_path / "d", registry=only(ScriptedBackend()), overrides=overrides
    ) as server:
        rail = server.wiring.tempo
        assert rail is not None and rail.devnet is not None
        tempo = rail.devnet
        key = "0x" + bytes(Account.create().key).hex()
        payer = Account.from_key(key).address
        await tempo.fund(payer, 1_000_000)
        recipient_before = await tempo.balance_of(tempo.info.recipient)
        inner = Recording()
        method = tempo_client.charge(
            account=TempoAccount.from_key(key), rpc_url=tempo.info.rpc_url, currencies=[PATH_USD]
        )
        transport = PaymentTransport(methods=[method], inner=inner)
        async with httpx.AsyncClient(transport=transport, base_url=server.base, timeout=60) as client:
            paid = await client.post(GENERATE, json=BODY)
        assert paid.status_code == 200, paid.text
        receipt = Receipt.from_payment_receipt(paid.headers["Payment-Receipt"])
        assert receipt.status == "success"
        assert await tempo.balance_of(tempo.info.recipient) == recipient_before + PRICE
        authorization = inner.seen[-1].headers["authorization"]
        async with server.client() as http:
            replay = await http.post(GENERATE, json=BODY, headers={"Authorization": authorization})
            other = await http.post(
                GENERATE, json={"prompt": "something else"}, headers={"Authorization": authorization}
            )
        assert replay.status_code == 200 and replay.json()["jobId"] == paid.json()["jobId"], replay.text
        assert other.status_code == 409, other.text
        assert await tempo.balance_of(tempo.info.recipient) == recipient_before + PRICE  # charged once
        report = await run_audit(server.settings)
        assert report.ok, report.problems


async def test_the_402_offers_mpp_beside_x402(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d", overrides={"devnet.tempo": True}) as server:
        async with server.client() as http:
            unpaid = await http.post(GENERATE, json=BODY)
            llms = (await http.get("/llms.txt")).text
            agents = (await http.get("/agents.txt")).text
            known = (await http.get("/.well-known/x402")).json()
            openapi = (await http.get("/api/openapi.json")).json()
    # Discovery lists the rail everywhere.
    assert "MPP `charge` on Tempo" in llms and "MPP `charge` on Tempo" in agents
    assert all(item["mpp"][0]["method"] == "tempo" for item in known["items"])
    operation = openapi["paths"][GENERATE]["post"]
    assert {o["method"] for o in operation["x-payment-info"]["offers"]} == {"x402-exact", "tempo"}
    assert unpaid.status_code == 402
    assert "PAYMENT-REQUIRED" in unpaid.headers
    [offer] = unpaid.headers.get_list("WWW-Authenticate")
    assert offer.startswith("Payment ") and 'method="tempo"' in offer and 'intent="charge"' in offer
    assert "digest=" in offer and "expires=" in offer


async def test_the_sdk_pays_with_mpp_and_polls_with_the_same_key(devnet: Devnet, tmp_path: Path) -> None:
    """What `make run`'s demo does: an image paid with MPP on Tempo, polled with SIGN-IN-WITH-X, saved."""
    overrides = {"devnet.tempo": True}
    async with running_server(
        devnet, tmp_path / "d", registry=only(ScriptedBackend()), overrides=overrides
    ) as server:
        assert server.wiring.tempo is not None and server.wiring.tempo.devnet is not None
        tempo = server.wiring.tempo.devnet
        key = "0x" + bytes(Account.create().key).hex()
        await tempo.fund(Account.from_key(key).address, 1_000_000)
        done = await generate_mpp(
            server.base,
            key,
            tempo.info.rpc_url,
            tempo.info.currency,
            "nano-banana",
            "generate",
            BODY,
            out_dir=tmp_path / "out",
        )
    assert done.job["status"] == "complete", done.job
    [image] = done.files
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_refused_mpp_payment_gets_challenges_bound_to_its_body(
    devnet: Devnet, tmp_path: Path
) -> None:
    """An unfunded payer's credential is refused with a 402 whose fresh MPP challenge binds the same body
    (it did not: the client's retry then failed as "the request body differs", hiding the real reason)."""
    body = json.dumps(BODY).encode()
    headers = {"content-type": "application/json"}
    async with running_server(devnet, tmp_path / "d", overrides={"devnet.tempo": True}) as server:
        assert server.wiring.tempo is not None and server.wiring.tempo.devnet is not None
        tempo = server.wiring.tempo.devnet
        key = "0x" + bytes(Account.create().key).hex()  # never funded
        async with server.client() as http:
            unpaid = await http.post(GENERATE, content=body, headers=headers)
            [offer] = unpaid.headers.get_list("WWW-Authenticate")
            method = tempo_client.charge(
                account=TempoAccount.from_key(key), rpc_url=tempo.info.rpc_url, currencies=[PATH_USD]
            )
            credential = await method.create_credential(
                CredentialParams(challenge=Challenge.from_www_authenticate(offer))
            )
            refused = await http.post(
                GENERATE, content=body, headers={**headers, "Authorization": str(credential)}
            )
    assert refused.status_code == 402, refused.text
    [fresh] = refused.headers.get_list("WWW-Authenticate")
    assert f'digest="{content_digest(body)}"' in fresh
