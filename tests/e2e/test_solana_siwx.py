"""A Solana payer polls its job: the official x402 client (ExactSvmScheme + its SIWX extension with the same
Solana key) pays on the Solana devnet, then answers the job route's 402 with a Sign in with Solana header."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from solders.keypair import Keypair
from x402 import x402Client
from x402.extensions.sign_in_with_x import CreateSIWxClientExtensionOptions, create_siwx_client_extension
from x402.http.clients import x402HttpxClient
from x402.mechanisms.svm.exact import ExactSvmScheme
from x402.mechanisms.svm.signers import KeypairSigner
from x402.schemas import PaymentRequired

from studio402.chain.devnet import Devnet
from studio402.sdk.client import generate_svm
from studio402.solana import process
from studio402.solana.devnet import NETWORK
from studio402.solana.faucet import fund_solana
from tests.fakes.scripted import ScriptedBackend, only
from tests.paid_support import BODY, GENERATE, running_server

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")  # solana-py's sync client


def solana_client(payer: Keypair, rpc_url: str) -> x402Client:
    """The official client for one Solana key: pays `exact` on Solana and signs in with the same key."""
    signer = KeypairSigner(payer)
    client = x402Client()
    client.register("solana:*", ExactSvmScheme(signer, rpc_url=rpc_url))
    client.register_extension(
        create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[signer]))
    )
    client.set_spend_controls(False)  # a devnet mint is not in its default-asset table
    return client


def decode_required(header: str) -> PaymentRequired:
    return PaymentRequired.model_validate_json(base64.b64decode(header))


async def test_the_solana_payer_polls_its_job_and_another_key_cannot(devnet: Devnet, tmp_path: Path) -> None:
    data = tmp_path / "d"
    async with running_server(
        devnet, data, registry=only(ScriptedBackend()), overrides={"devnet.solana": True}
    ) as server:
        payer = Keypair()
        await fund_solana(data, str(payer.pubkey()), 1_000_000)
        rpc_url, _ = await process.ensure_running(data)
        client = solana_client(payer, rpc_url)
        async with server.client() as http:
            required = decode_required((await http.post(GENERATE, json=BODY)).headers["PAYMENT-REQUIRED"])
            solana = required.model_copy(
                update={"accepts": [a for a in required.accepts if a.network == NETWORK]}
            )
            payload = await client.create_payment_payload(solana)
            signature = base64.b64encode(payload.model_dump_json(by_alias=True, exclude_none=True).encode())
            paid = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": signature.decode()})
            assert paid.status_code == 200, paid.text
            path = f"/api/jobs/{paid.json()['jobId']}"
            challenge = await http.get(path)
        assert challenge.status_code == 402
        extension = decode_required(challenge.headers["PAYMENT-REQUIRED"]).extensions or {}
        assert {"chainId": NETWORK, "type": "ed25519"} in extension["sign-in-with-x"]["supportedChains"]
        async with x402HttpxClient(client, base_url=server.base, timeout=60) as mine:
            polled = await mine.get(path)  # the client answers the 402 with its Solana sign-in by itself
        assert polled.status_code == 200, polled.text
        assert polled.json()["jobId"] == paid.json()["jobId"]
        stranger = solana_client(Keypair(), rpc_url)
        async with x402HttpxClient(stranger, base_url=server.base, timeout=60) as theirs:
            assert (await theirs.get(path)).status_code == 404  # as for EVM: not yours, not found


async def test_the_sdk_pays_on_solana_and_polls_with_the_same_key(devnet: Devnet, tmp_path: Path) -> None:
    """What `make run`'s demo does on Solana: pay, sign in with Solana, poll, save the image."""
    data = tmp_path / "d"
    async with running_server(
        devnet, data, registry=only(ScriptedBackend()), overrides={"devnet.solana": True}
    ) as server:
        payer = Keypair()
        await fund_solana(data, str(payer.pubkey()), 1_000_000)
        rpc_url, _ = await process.ensure_running(data)
        done = await generate_svm(
            server.base, bytes(payer), rpc_url, "nano-banana", "generate", BODY, out_dir=tmp_path / "out"
        )
    assert done.job["status"] == "complete", done.job
    [image] = done.files
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
