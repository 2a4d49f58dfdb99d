"""A Solana devnet (LiteSVM behind its JSON-RPC endpoint) per test, and the official x402 SVM client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from solders.keypair import Keypair
from x402 import x402Client
from x402.mechanisms.svm.exact import ExactSvmScheme
from x402.mechanisms.svm.signers import KeypairSigner
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements

from studio402.chain.rpc import AsyncRpc
from studio402.payments.interfaces import PaymentMethod
from studio402.payments.methods.svm_exact import SvmExactMethod, svm_offer
from studio402.payments.offers import Requirement
from studio402.solana.devnet import DECIMALS, NETWORK, SolanaDevnet
from studio402.solana.rpc_server import SolanaRpcServer
from studio402.solana.settlement import SvmSettler

# solana-py's sync Client (what the x402 SVM client uses) warns that it is deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")


@pytest.fixture
def sol_server(tmp_path: Path) -> Iterator[SolanaRpcServer]:
    server = SolanaRpcServer(SolanaDevnet(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
async def sol_rpc(sol_server: SolanaRpcServer) -> AsyncIterator[AsyncRpc]:
    rpc = AsyncRpc(sol_server.url)
    yield rpc
    await rpc.aclose()


@pytest.fixture
def sol_method(sol_server: SolanaRpcServer, sol_rpc: AsyncRpc) -> SvmExactMethod:
    dev = sol_server.devnet
    offer = svm_offer(
        NETWORK, str(dev.mint.pubkey()), DECIMALS, str(dev.pay_to.pubkey()), str(dev.fee_payer.pubkey()), 60
    )
    method = SvmExactMethod(offer, dev.fee_payer, SvmSettler(sol_rpc))
    _port: PaymentMethod = method  # mypy: it plugs into the engine's port as it is
    return method


def to_x402(requirement: Requirement) -> PaymentRequirements:
    return PaymentRequirements.model_validate(requirement.to_v2())


async def official_payment(rpc_url: str, payer: Keypair, requirement: Requirement) -> PaymentPayload:
    """What the unmodified x402 client (ExactSvmScheme) sends for `requirement`."""
    client = x402Client()
    client.register("solana:*", ExactSvmScheme(KeypairSigner(payer), rpc_url=rpc_url))
    client.set_spend_controls(False)  # our mint is not in its default-asset table
    required = PaymentRequired(x402_version=2, accepts=[to_x402(requirement)], resource={"url": "http://t/x"})
    payload = await client.create_payment_payload(required)
    assert isinstance(payload, PaymentPayload)
    return payload
