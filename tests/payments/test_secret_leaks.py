"""Finding 7: provider keys in configured URLs never reach a problem document."""

from __future__ import annotations

from studio402.chain.rpc import AsyncRpc
from tests.devnet_fixture import new_payer
from tests.paid_support import BODY, GENERATE, PaidServer, challenge, payment_header
from tests.secrets_support import assert_no_secrets

LEAKY_RPC = "http://user:secret@127.0.0.1:1/v2/abcdef0123456789abcdef0123456789?key=topsecret"
SECRETS = ("secret", "topsecret", "abcdef0123456789abcdef0123456789", "user:")


async def test_unreachable_rpc_502_does_not_echo_its_url(paid_server: PaidServer) -> None:
    devnet = paid_server.devnet
    payer = await new_payer(devnet, 1_000_000)
    async with paid_server.client() as http:
        header = payment_header(devnet, payer, await challenge(http))
        rpc: AsyncRpc = paid_server.wiring._rpcs[devnet.info.chain_id]
        good_url, rpc.url = rpc.url, LEAKY_RPC  # the node goes away after start-up
        try:
            response = await http.post(GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": header})
        finally:
            rpc.url = good_url
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert_no_secrets(response.text, SECRETS)
