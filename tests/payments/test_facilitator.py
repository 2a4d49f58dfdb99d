"""Settling through a remote x402 facilitator (the official SDK's, over HTTP) instead of a settler key."""

from __future__ import annotations

import time
from pathlib import Path

from eth_account import Account
from x402.http.clients import x402HttpxClient

from studio402.chain.devnet import Devnet
from studio402.cli.ledger import run_audit
from studio402.sdk.client import x402_client
from tests.devnet_fixture import new_payer
from tests.fakes.x402_facilitator import facilitator_app
from tests.paid_support import (
    BODY,
    GENERATE,
    challenge,
    network_config,
    payment_header,
    running_server,
    transfers_from,
)
from tests.server import free_port, serve


async def test_payments_settle_through_a_remote_facilitator(devnet: Devnet, tmp_path: Path) -> None:
    gas = Account.create()
    await devnet.rpc.request("anvil_setBalance", [gas.address, hex(10**19)])
    app, calls = facilitator_app(devnet.info.rpc_url, devnet.info.network, "0x" + bytes(gas.key).hex())
    port = free_port()
    async with serve(app, port) as facilitator_url:
        info = devnet.info
        network = network_config(info, settler_key=None, facilitator_url=facilitator_url)
        payer, poor = await new_payer(devnet, 1_000_000), await new_payer(devnet, 1_000)
        overrides = {"payments.networks": [network]}
        async with running_server(devnet, tmp_path / "d", overrides=overrides) as server:
            async with x402HttpxClient(x402_client(payer.key), base_url=server.base, timeout=60) as http:
                paid = await http.post(GENERATE, json=BODY)
            assert paid.status_code == 200, paid.text
            async with server.client() as http:
                accepted = await challenge(http)
                refused = await http.post(
                    GENERATE, json=BODY, headers={"PAYMENT-SIGNATURE": payment_header(devnet, poor, accepted)}
                )
                expired = await http.post(
                    GENERATE,
                    json=BODY,
                    headers={
                        "PAYMENT-SIGNATURE": payment_header(
                            devnet, payer, accepted, valid_before=int(time.time()) - 5
                        )
                    },
                )
            report = await run_audit(server.settings)
    [(to, value, tx)] = await transfers_from(devnet, payer.address)
    assert (to, value) == (devnet.info.pay_to, 67_000)
    receipt = await devnet.rpc.get_transaction_receipt(tx)
    assert receipt is not None and receipt["from"].lower() == gas.address.lower()  # the facilitator paid gas
    assert refused.status_code == 402 and "balance" in refused.json()["code"]
    assert expired.status_code == 402 and expired.json()["code"].endswith("valid_before")
    assert await transfers_from(devnet, poor.address) == []
    assert calls["settle"] == 1  # refused payments never reached /settle
    assert report.ok, report.problems
