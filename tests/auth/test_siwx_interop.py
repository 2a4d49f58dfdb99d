"""Interop with the official x402 SDK: its server-side checks agree with ours, and its HTTP client signs in
against a poll route guarded by our verifier with no help."""

from __future__ import annotations

import base64
import json

import httpx
from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from x402 import x402Client
from x402.extensions.sign_in_with_x import (
    CreateSIWxClientExtensionOptions,
    build_siwx_schema,
    create_siwx_client_extension,
    parse_siwx_header,
    validate_siwx_message,
    verify_siwx_signature,
)
from x402.http.clients.httpx import x402AsyncTransport
from x402.schemas import PaymentRequired

from studio402.auth.siwx import SIWX_EXTENSION_KEY, SIWX_HEADER, SiwxVerifier
from studio402.errors import AuthError
from tests.siwx_support import encode_fields

from .conftest import CHAIN_ID, JOB_URL, PUBLIC_URL, FakeClock, answer_challenge, decode_fields


async def test_sdk_server_checks_agree_with_ours(account: LocalAccount) -> None:
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[CHAIN_ID])  # wall clock: the SDK reads it too
    header = await answer_challenge(verifier, JOB_URL, account)
    payload = parse_siwx_header(header)
    assert (await validate_siwx_message(payload, PUBLIC_URL)).is_valid
    sdk = await verify_siwx_signature(payload)
    assert sdk.is_valid and sdk.payer is not None
    assert await verifier.verify(header, request_url=JOB_URL) == sdk.payer.lower()

    fields = decode_fields(header)
    fields["nonce"] = "ffffffffffffffffffffffffffffffff"
    tampered = encode_fields(fields)
    assert not (await verify_siwx_signature(parse_siwx_header(tampered))).is_valid
    try:
        await verifier.verify(tampered, request_url=JOB_URL)
    except AuthError as err:
        assert err.code == "siwx_bad_signature"
    else:
        raise AssertionError("tampered header accepted")


def test_challenge_shape(verifier: SiwxVerifier, clock: FakeClock) -> None:
    ext = verifier.challenge_extension(JOB_URL)
    again = verifier.challenge_extension(JOB_URL, statement="Read job j1")
    info = ext["info"]
    assert info == {
        "domain": "127.0.0.1:8402",
        "uri": JOB_URL,
        "version": "1",
        "nonce": info["nonce"],
        "issuedAt": "2030-01-02T03:04:05.678Z",
        "expirationTime": "2030-01-02T03:09:05.678Z",
        "statement": "Sign in to read your jobs",
        "resources": [JOB_URL],
    }
    assert len(info["nonce"]) == 32 and int(info["nonce"], 16) >= 0
    assert again["info"]["nonce"] != info["nonce"]
    assert again["info"]["statement"] == "Read job j1"
    assert ext["supportedChains"] == [{"chainId": "eip155:31337", "type": "eip191"}]
    assert ext["schema"] == build_siwx_schema()


def test_payment_required_body_is_a_valid_auth_only_402(verifier: SiwxVerifier) -> None:
    body = verifier.payment_required_body(JOB_URL)
    assert body["x402Version"] == 2 and body["accepts"] == []
    assert body["resource"] == {"url": JOB_URL, "description": "Job status", "mimeType": "application/json"}
    model = PaymentRequired.model_validate(body)
    assert model.accepts == [] and model.resource is not None and model.resource.url == JOB_URL
    assert model.extensions is not None and set(model.extensions) == {SIWX_EXTENSION_KEY}
    assert json.loads(model.model_dump_json(by_alias=True, exclude_none=True)) == body


def _poll_app(verifier: SiwxVerifier) -> Starlette:
    """A stand-in for the job-poll route: 402 + PAYMENT-REQUIRED until a valid SIGN-IN-WITH-X arrives."""

    async def poll(request: Request) -> JSONResponse:
        url = verifier.url_for(request.url.path, request.scope["query_string"].decode("latin-1"))
        try:
            address = await verifier.verify(request.headers.get(SIWX_HEADER), request_url=url)
        except AuthError as err:
            body = verifier.payment_required_body(url, error=str(err.code))
            encoded = base64.b64encode(json.dumps(body).encode()).decode()
            return JSONResponse({}, status_code=402, headers={"PAYMENT-REQUIRED": encoded})
        return JSONResponse({"address": address, "url": url})

    return Starlette(routes=[Route("/api/jobs/{job_id}", poll)])


async def test_official_httpx_client_signs_in_by_itself(account: LocalAccount) -> None:
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[8453, CHAIN_ID])
    client = x402Client()
    client.register_extension(
        create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[account]))
    )
    app = _poll_app(verifier)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as plain:
        refused = await plain.get("/api/jobs/j7")
    assert refused.status_code == 402
    assert json.loads(base64.b64decode(refused.headers["PAYMENT-REQUIRED"]))["error"] == "siwx_missing"
    transport = x402AsyncTransport(client, httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as paying:
        response = await paying.get("/api/jobs/j7", params={"wait": "0"})
    assert response.status_code == 200, response.text
    assert response.json() == {"address": account.address.lower(), "url": f"{PUBLIC_URL}/api/jobs/j7?wait=0"}
