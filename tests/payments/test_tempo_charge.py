"""MPP `charge` on Tempo: the unmodified pympp client pays challenges of payments/methods/tempo_charge.py, and
chain/tempo_settlement.py settles them on a real `anvil --network tempo` (the Tempo devnet)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from mpp import Challenge, Receipt
from mpp.methods.tempo import TempoAccount
from mpp.methods.tempo import client as tempo_client
from mpp.runtime import CredentialParams

from studio402.chain.tempo_devnet import PATH_USD, TempoDevnet
from studio402.chain.tempo_settlement import TempoSettler
from studio402.errors import MalformedPayment, PaymentConflict, PaymentRejected
from studio402.payments.methods.tempo_charge import (
    Problem,
    RouteRequest,
    TempoCharge,
    TempoChargeConfig,
    challenge_header,
    claim_or_refuse,
    parse_credential,
    receipt_header,
    verify,
)
from studio402.payments.outcome import SettleStatus

PRICE = 40_000  # $0.04
URL = "http://studio.test/api/generate/nano-banana"
BODY = json.dumps({"prompt": "a red fox"}).encode()
SECRET = "s" * 40


class LedgerStandIn:
    """What the engine's ledger does for `UsedCredentials` (shared by every process there)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def claim(self, key: str) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


@pytest.fixture
async def tempo(tmp_path: Path) -> AsyncIterator[TempoDevnet]:
    net = TempoDevnet(tmp_path)
    await net.start()
    try:
        yield net
    finally:
        await net.stop()


def _config(net: TempoDevnet, **changes: object) -> TempoChargeConfig:
    base = TempoChargeConfig(
        realm="studio.test",
        secret_key=SECRET,
        chain_id=net.info.chain_id,
        currency=PATH_USD,
        recipient=net.info.recipient,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _route(amount: int = PRICE, body: bytes = BODY) -> RouteRequest:
    return RouteRequest(
        amount=amount, http_method="POST", path="/api/generate/nano-banana", query="", body=body
    )


async def _payer(net: TempoDevnet, micros: int = 1_000_000) -> str:
    key = "0x" + bytes(Account.create().key).hex()
    await net.fund(Account.from_key(key).address, micros)
    return key


async def _authorization(net: TempoDevnet, key: str, www_authenticate: str) -> str:
    """The unmodified pympp client's credential for a challenge header, as it would send it."""
    method = tempo_client.charge(
        account=TempoAccount.from_key(key), rpc_url=net.info.rpc_url, currencies=[PATH_USD]
    )
    challenge = Challenge.from_www_authenticate(www_authenticate)
    assert method.can_handle_challenge is not None and method.can_handle_challenge(challenge)
    return str(await method.create_credential(CredentialParams(challenge=challenge)))


class MiniServer:
    """The engine's job, reduced to MPP: 402 + challenge, then verify, claim, settle, receipt."""

    def __init__(self, net: TempoDevnet, config: TempoChargeConfig) -> None:
        self.config = config
        self.used = LedgerStandIn()
        self.settler = TempoSettler(net.rpc, before_broadcast=net.reset_expiring_nonce)
        self.recorded: list[tuple[str | None, bytes | None]] = []
        self.authorizations: list[str] = []

    async def _on_signed(self, tx_hash: str | None, raw: bytes | None) -> None:
        self.recorded.append((tx_hash, raw))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        route = RouteRequest(
            PRICE, request.method, request.url.path, request.url.query.decode(), request.content
        )
        auth = request.headers.get("authorization")
        if auth is None:
            return self._challenge(route, "payment-required")
        self.authorizations.append(auth)
        try:
            charge = verify(self.config, parse_credential(auth), route, now=time.time())
            await claim_or_refuse(self.used, charge)
        except (PaymentRejected, MalformedPayment) as exc:
            return self._challenge(route, exc.code)
        except PaymentConflict as exc:
            return httpx.Response(403, json={"code": exc.code})
        outcome = await self.settler.settle(charge, on_signed=self._on_signed, timeout=10)
        if outcome.status is not SettleStatus.SETTLED:
            return httpx.Response(502, json={"status": outcome.status.value, "reason": outcome.reason})
        headers = {
            "Payment-Receipt": receipt_header(charge.tx_hash, now=time.time()),
            "Cache-Control": "private",
        }
        return httpx.Response(200, json={"tx": charge.tx_hash, "payer": charge.payer}, headers=headers)

    def _challenge(self, route: RouteRequest, code: str) -> httpx.Response:
        header = challenge_header(self.config, route, now=time.time())
        headers = {"WWW-Authenticate": header, "Cache-Control": "no-store"}
        body = {"type": f"https://paymentauth.org/problems/{code}", "status": 402, "code": code}
        return httpx.Response(402, json=body, headers=headers)


def _client(net: TempoDevnet, key: str, server: MiniServer) -> httpx.AsyncClient:
    from mpp.client.transport import PaymentTransport

    method = tempo_client.charge(
        account=TempoAccount.from_key(key), rpc_url=net.info.rpc_url, currencies=[PATH_USD]
    )
    transport = PaymentTransport(methods=[method], inner=httpx.MockTransport(server.handle))
    return httpx.AsyncClient(transport=transport, timeout=30)


async def test_pympp_client_pays_and_a_replay_is_refused(tempo: TempoDevnet) -> None:
    server = MiniServer(tempo, _config(tempo))
    key = await _payer(tempo)
    payer = Account.from_key(key).address
    before = await tempo.balance_of(tempo.info.recipient)
    async with _client(tempo, key, server) as client:
        response = await client.post(URL, content=BODY)
        assert response.status_code == 200, response.text
        receipt = Receipt.from_payment_receipt(response.headers["Payment-Receipt"])
        assert receipt.status == "success" and receipt.reference == response.json()["tx"]
        assert response.json()["payer"] == payer
        # The hash we recorded before broadcasting is the one the chain mined.
        assert server.recorded[0][0] == receipt.reference
        mined = await tempo.rpc.get_transaction_receipt(receipt.reference)
        assert mined is not None and mined["transactionHash"] == receipt.reference
        assert await tempo.balance_of(tempo.info.recipient) == before + PRICE
        # The same payer pays a second time (anvil's expiring-nonce quirk is handled by the devnet hook).
        second = await client.post(URL, content=BODY)
        assert second.status_code == 200, second.text
        assert await tempo.balance_of(tempo.info.recipient) == before + 2 * PRICE
    payer_balance = await tempo.balance_of(payer)
    # Replaying the first Authorization: refused through the ledger, nothing moves.
    async with httpx.AsyncClient(transport=httpx.MockTransport(server.handle)) as raw:
        replay = await raw.post(URL, content=BODY, headers={"Authorization": server.authorizations[0]})
    assert replay.status_code == 403 and replay.json()["code"] == Problem.REPLAYED
    assert await tempo.balance_of(tempo.info.recipient) == before + 2 * PRICE
    assert await tempo.balance_of(payer) == payer_balance


async def _credential_for(
    tempo: TempoDevnet, key: str, config: TempoChargeConfig, route: RouteRequest
) -> str:
    return await _authorization(tempo, key, challenge_header(config, route, now=time.time()))


def _rewrap(authorization: str, onto: str) -> str:
    """`onto`'s challenge echo with `authorization`'s payment (an attacker mixing two credentials)."""
    paid, target = parse_credential(authorization), parse_credential(onto)
    return dataclasses.replace(target, payload=paid.payload).to_authorization()


async def _assert_refused(tempo: TempoDevnet, config: TempoChargeConfig, auth: str, problem: Problem) -> None:
    recipient_before = await tempo.balance_of(tempo.info.recipient)
    with pytest.raises(PaymentRejected) as caught:
        verify(config, parse_credential(auth), _route(), now=time.time())
    assert caught.value.code == problem.value
    assert await tempo.balance_of(tempo.info.recipient) == recipient_before


async def test_underpayment_is_refused(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    cheap = await _credential_for(tempo, key, config, _route(amount=PRICE // 2))
    full = await _credential_for(tempo, key, config, _route())
    # Presented for the full-price route as is: the challenge was for another price.
    await _assert_refused(tempo, config, cheap, Problem.INVALID_CHALLENGE)
    # The cheap transaction under the full-price challenge: the transfer is short.
    await _assert_refused(tempo, config, _rewrap(cheap, onto=full), Problem.INSUFFICIENT)


async def test_wrong_recipient_is_refused(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    elsewhere = _config(tempo, recipient=Account.create().address)
    other = await _credential_for(tempo, key, elsewhere, _route())
    ours = await _credential_for(tempo, key, config, _route())
    await _assert_refused(tempo, config, other, Problem.INVALID_CHALLENGE)
    await _assert_refused(tempo, config, _rewrap(other, onto=ours), Problem.VERIFICATION_FAILED)


async def test_expired_challenge_is_refused(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    auth = await _credential_for(tempo, key, config, _route())
    with pytest.raises(PaymentRejected) as caught:
        verify(config, parse_credential(auth), _route(), now=time.time() + config.ttl_seconds + 1)
    assert caught.value.code == Problem.EXPIRED.value


async def test_tampered_challenge_is_refused(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    auth = await _credential_for(tempo, key, config, _route())
    credential = parse_credential(auth)
    bad_id = credential.challenge.id[:-2] + ("AA" if not credential.challenge.id.endswith("AA") else "BB")
    forged = dataclasses.replace(credential, challenge=dataclasses.replace(credential.challenge, id=bad_id))
    await _assert_refused(tempo, config, forged.to_authorization(), Problem.INVALID_CHALLENGE)
    # Another server's secret: the same fields, a different id.
    await _assert_refused(tempo, _config(tempo, secret_key="t" * 40), auth, Problem.INVALID_CHALLENGE)
    # A different body than the one the challenge binds.
    with pytest.raises(PaymentRejected) as caught:
        verify(config, credential, _route(body=b'{"prompt":"a blue fox"}'), now=time.time())
    assert caught.value.code == Problem.INVALID_CHALLENGE.value


def test_garbage_credentials_are_malformed() -> None:
    for header in ("Payment abc!!", "Bearer x", "Payment "):
        with pytest.raises(MalformedPayment):
            parse_credential(header)


async def test_charge_round_trips_through_the_ledger_json(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    charge = verify(
        config,
        parse_credential(await _credential_for(tempo, key, config, _route())),
        _route(),
        now=time.time(),
    )
    assert TempoCharge.from_json(charge.to_json()) == charge
    assert charge.nonce == charge.tx_hash and charge.payer == Account.from_key(key).address
    settler = TempoSettler(tempo.rpc, before_broadcast=tempo.reset_expiring_nonce)
    assert await settler.simulate(charge) is None
    # The reconciler's lookup of a charge the node never got (a crash after recording): the recorded bytes
    # are sent again and the outcome comes from the receipt.
    before = await tempo.balance_of(tempo.info.recipient)
    stored = TempoCharge.from_json(charge.to_json())
    outcome = await settler.lookup(stored)
    if outcome.status is SettleStatus.UNKNOWN:  # sent just now: the next round sees the receipt
        await tempo.rpc.wait_for_receipt(charge.tx_hash, timeout=10)
        outcome = await settler.lookup(stored)
    assert (outcome.status, outcome.tx_hash) == (SettleStatus.SETTLED, charge.tx_hash)
    assert await tempo.balance_of(tempo.info.recipient) == before + PRICE


async def test_unfunded_payer_is_unknown_until_valid_before_then_not_charged(tempo: TempoDevnet) -> None:
    config = _config(tempo)
    key = await _payer(tempo, micros=1)  # cannot pay the price (nor the fee)
    auth = await _credential_for(tempo, key, config, _route())
    charge = verify(config, parse_credential(auth), _route(), now=time.time())
    settler = TempoSettler(tempo.rpc, before_broadcast=tempo.reset_expiring_nonce)
    assert await settler.simulate(charge) == "insufficient_funds"
    before = await tempo.balance_of(tempo.info.recipient)
    recorded: list[str | None] = []

    async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
        recorded.append(tx_hash)

    # The node refuses it, but no error text decides: the chain cannot rule it out before validBefore.
    outcome = await settler.settle(charge, on_signed=on_signed, timeout=0.5)
    assert recorded == [charge.tx_hash] and outcome.status is SettleStatus.UNKNOWN
    # Past validBefore on the chain's clock, with nothing mined or pending: not charged.
    await tempo.rpc.request("evm_setNextBlockTimestamp", [charge.valid_before + 1])
    await tempo.rpc.request("evm_mine", [])
    outcome = await settler.lookup(charge)
    assert (outcome.status, outcome.reason) == (SettleStatus.REVERTED, "payment-expired")
    assert await tempo.balance_of(tempo.info.recipient) == before


async def test_a_payment_bound_to_another_challenge_is_refused(tempo: TempoDevnet) -> None:
    config, key = _config(tempo), await _payer(tempo)
    first = await _credential_for(tempo, key, config, _route())
    second = await _credential_for(tempo, key, config, _route())
    verify(config, parse_credential(first), _route(), now=time.time())  # fine under its own challenge
    # The same price and payee, but its attribution memo names the first challenge.
    await _assert_refused(tempo, config, _rewrap(first, onto=second), Problem.VERIFICATION_FAILED)


def test_config_from_settings() -> None:
    from studio402.config import TempoSettings
    from studio402.payments.methods.tempo_charge import config_from_settings

    recipient = Account.create().address
    settings = TempoSettings(
        rpc_url="https://rpc.tempo.xyz", recipient=recipient.lower(), realm="a.b", secret_key="k" * 32
    )
    config = config_from_settings(settings)
    assert (config.chain_id, config.recipient, config.secret_key) == (4217, recipient, "k" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        TempoSettings(rpc_url="x", recipient=recipient, realm="a.b", secret_key="short")


def _with_payload(authorization: str, payload: object) -> str:
    credential = parse_credential(authorization)
    return dataclasses.replace(credential, payload=payload).to_authorization()  # type: ignore[arg-type]


async def test_unrecoverable_signature_and_odd_payloads_are_refused_not_crashes(tempo: TempoDevnet) -> None:
    import rlp

    config, key = _config(tempo), await _payer(tempo)
    auth = await _credential_for(tempo, key, config, _route())
    raw = bytes.fromhex(parse_credential(auth).payload["signature"].removeprefix("0x"))
    fields = rlp.decode(raw[1:])
    unsigned = "0x76" + rlp.encode([*fields[:-1], bytes(64) + b"\x1b"]).hex()  # r = s = 0: no public key
    refused = _with_payload(auth, {"type": "transaction", "signature": unsigned})
    await _assert_refused(tempo, config, refused, Problem.VERIFICATION_FAILED)
    odd: tuple[object, ...] = ([], "transaction", {"type": "transaction", "signature": 5})
    for payload in odd:
        with pytest.raises((PaymentRejected, MalformedPayment)):
            verify(config, parse_credential(_with_payload(auth, payload)), _route(), now=time.time())


def test_payments_tempo_from_toml_and_environment(tmp_path: Path) -> None:
    from studio402.config import load_settings

    recipient = Account.create().address
    toml = tmp_path / "c.toml"
    toml.write_text(
        f'[payments.tempo]\nrpc_url = "https://rpc.tempo.xyz"\nrecipient = "{recipient}"\nrealm = "a.b"\n'
    )
    settings = load_settings(toml, environ={"STUDIO402_PAYMENTS__TEMPO__SECRET_KEY": "x" * 32})
    assert settings.payments.tempo is not None
    assert settings.payments.tempo.secret_key.get_secret_value() == "x" * 32
    assert load_settings(environ={}).payments.tempo is None


async def test_claimed_names_the_transaction_even_after_expiry(tempo: TempoDevnet) -> None:
    from studio402.payments.methods.tempo_charge import claimed

    config, key = _config(tempo), await _payer(tempo)
    credential = parse_credential(await _credential_for(tempo, key, config, _route()))
    charge = verify(config, credential, _route(), now=time.time())
    assert claimed(credential) == (charge.payer, charge.tx_hash, charge.raw_tx)
    assert claimed(parse_credential(_with_payload(credential.to_authorization(), {"type": "hash"}))) is None


async def test_the_engine_issuer_binds_the_digest_the_api_computed(tempo: TempoDevnet) -> None:
    from studio402.app.paid_request import content_digest
    from studio402.payments.interfaces import ChallengeIssuer
    from studio402.payments.methods.tempo_charge import TempoChargeIssuer, route_for
    from studio402.payments.x402 import Resource

    config, key = _config(tempo), await _payer(tempo)
    resource = Resource(url="https://studio.test/api/generate/nano-banana?x=1", description="Generate")
    issuer: ChallengeIssuer = TempoChargeIssuer(config)  # the engine's port
    header = issuer.www_authenticate(resource, PRICE, content_digest(BODY))
    credential = parse_credential(await _authorization(tempo, key, header))
    charge = verify(config, credential, route_for(resource, PRICE, BODY), now=time.time())
    assert charge.amount == PRICE
    for other in (route_for(resource, PRICE, b"{}"), route_for(resource, PRICE + 1, BODY)):
        with pytest.raises(PaymentRejected):
            verify(config, credential, other, now=time.time())
