"""MPP `charge` on Tempo through the official pympp client: the price of the challenge (for the spend
limits), and the paying transport, which records the credential it sent so that a POST whose answer was
lost is sent again with the same credential (the same transaction: the same job, never a second charge)."""

from __future__ import annotations

import httpx
from mpp import Challenge
from mpp.client.transport import PaymentTransport
from mpp.methods.tempo import TempoAccount
from mpp.methods.tempo import client as tempo

from studio402.sdk._models import Price
from studio402.sdk._wallet import Wallet

WWW_AUTHENTICATE = "www-authenticate"


def tempo_challenge(response: httpx.Response) -> Challenge | None:
    """The `tempo` charge challenge of a 402, if it offers one."""
    for value in response.headers.get_list(WWW_AUTHENTICATE):
        if not value.lower().startswith("payment "):
            continue
        challenge = Challenge.from_www_authenticate(value)
        if challenge.method == "tempo" and challenge.intent == "charge":
            return challenge
    return None


def challenge_price(challenge: Challenge) -> Price:
    return Price(int(challenge.request["amount"]))


class _Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.credential: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = request.headers.get("authorization", "")
        if sent[:8].lower() == "payment ":
            self.credential = sent
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def paying_transport(wallet: Wallet) -> tuple[PaymentTransport, _Recording]:
    assert wallet.tempo is not None
    method = tempo.charge(
        account=TempoAccount.from_key(wallet.key),
        rpc_url=wallet.tempo.rpc_url,
        currencies=list(wallet.tempo.currencies) or None,
    )
    recording = _Recording(httpx.AsyncHTTPTransport())
    return PaymentTransport(methods=[method], inner=recording), recording
