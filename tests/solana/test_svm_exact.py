"""x402 `exact` on the Solana devnet: the official client pays; hostile transactions are refused with nothing
moved; a transaction settles once however often it is sent."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from x402.schemas import PaymentPayload

from studio402.chain.errors import RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc
from studio402.errors import ChainError, PaymentError, PaymentRejected
from studio402.payments.methods.svm_exact import (
    COMPUTE_BUDGET_PROGRAM,
    MEMO_PROGRAM,
    TOKEN_PROGRAM,
    Reason,
    SvmExactMethod,
)
from studio402.payments.outcome import SettleStatus
from studio402.solana.devnet import associated_token_account
from studio402.solana.rpc_server import SolanaRpcServer
from studio402.solana.settlement import SvmSettler
from tests.solana.conftest import official_payment

pytestmark = pytest.mark.filterwarnings("ignore:Client is deprecated")

PRICE_MICROS = 40_000  # $0.04 -> 40,000 atomic units (6 decimals)


async def _no_hook(tx_hash: str | None, raw: bytes | None) -> None:
    return None


def _balances(server: SolanaRpcServer, *owners: Pubkey) -> list[int]:
    dev = server.devnet
    return [dev.token_balance(associated_token_account(o, dev.mint.pubkey())) for o in owners]


def _hostile(
    server: SolanaRpcServer,
    payer: Keypair,
    *,
    amount: int = 40_000,
    mint: Pubkey | None = None,
    destination_owner: Pubkey | None = None,
    authority: Keypair | None = None,
    memo_accounts: list[AccountMeta] | None = None,
    blockhash: Hash | None = None,
) -> PaymentPayload:
    """A payment built by hand like the official client's, with one thing changed; `accepted` is honest."""
    dev = server.devnet
    mint = mint or dev.mint.pubkey()
    authority = authority or payer
    source = associated_token_account(authority.pubkey(), mint)
    dest = associated_token_account(destination_owner or dev.pay_to.pubkey(), mint)
    ixs = [
        Instruction(COMPUTE_BUDGET_PROGRAM, bytes([2]) + (20_000).to_bytes(4, "little"), []),
        Instruction(COMPUTE_BUDGET_PROGRAM, bytes([3]) + (1).to_bytes(8, "little"), []),
        Instruction(
            TOKEN_PROGRAM,
            bytes([12]) + amount.to_bytes(8, "little") + bytes([6]),
            [
                AccountMeta(source, False, True),
                AccountMeta(mint, False, False),
                AccountMeta(dest, False, True),
                AccountMeta(authority.pubkey(), True, False),
            ],
        ),
        Instruction(MEMO_PROGRAM, b"0123456789abcdef0123", memo_accounts or []),
    ]
    message = MessageV0.try_compile(dev.fee_payer.pubkey(), ixs, [], blockhash or dev.latest_blockhash()[0])
    signers = [k for k in message.account_keys[: message.header.num_required_signatures]]
    by_key = {payer.pubkey(): payer, authority.pubkey(): authority}
    sigs = [Signature.default()] + [
        by_key[k].sign_message(b"\x80" + bytes(message)) for k in signers[1:] if k in by_key
    ]
    tx = VersionedTransaction.populate(message, sigs)
    return PaymentPayload.model_validate(
        {
            "x402Version": 2,
            "payload": {"transaction": base64.b64encode(bytes(tx)).decode()},
            "accepted": {
                "scheme": "exact",
                "network": dev.info("").network,
                "asset": str(dev.mint.pubkey()),
                "amount": "40000",
                "payTo": str(dev.pay_to.pubkey()),
                "maxTimeoutSeconds": 60,
                "extra": {"feePayer": str(dev.fee_payer.pubkey())},
            },
        }
    )


async def test_official_client_pays_and_tokens_move(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payload = await official_payment(sol_server.url, payer, requirement)

    payment = sol_method.verify(payload, requirement, now=1_000.0)
    assert payment.payer == str(payer.pubkey())
    payer_signature = VersionedTransaction.from_bytes(
        base64.b64decode(payload.payload["transaction"])
    ).signatures[1]
    assert sol_method.claimed(payload) == (str(payer.pubkey()), payment.nonce, str(payer_signature))
    assert sol_method.same_proof(payment.to_json(), str(payer_signature))
    assert await sol_method.simulate(payment) is None
    signed: list[str | None] = []

    async def on_signed(tx_hash: str | None, raw: bytes | None) -> None:
        signed.append(tx_hash)

    outcome = await sol_method.settle(payment, on_signed=on_signed, timeout=5)
    assert outcome.status is SettleStatus.SETTLED and outcome.tx_hash == payment.nonce == signed[0]
    pay_to = sol_server.devnet.pay_to.pubkey()
    assert _balances(sol_server, payer.pubkey(), pay_to) == [960_000, 40_000]
    restored = sol_method.restore(requirement, payment.to_json())
    assert (await sol_method.lookup(restored, None, None)).status is SettleStatus.SETTLED


async def test_resubmitting_one_transaction_pays_once(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod, sol_rpc: AsyncRpc
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payload = await official_payment(sol_server.url, payer, requirement)
    first = sol_method.verify(payload, requirement, now=1_000.0)
    again = sol_method.verify(payload, requirement, now=1_001.0)
    assert first.nonce == again.nonce  # one transaction, one payment key

    one = await sol_method.settle(first, on_signed=_no_hook, timeout=5)
    two = await sol_method.settle(again, on_signed=_no_hook, timeout=5)
    assert one == two and one.status is SettleStatus.SETTLED
    with pytest.raises(RpcError):  # the chain itself refuses the same bytes
        await sol_rpc.request(
            "sendTransaction", [base64.b64encode(first.raw).decode(), {"encoding": "base64"}]
        )
    assert _balances(sol_server, payer.pubkey(), sol_server.devnet.pay_to.pubkey()) == [960_000, 40_000]


async def test_stale_blockhash_is_refused_and_nothing_moves(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod, sol_rpc: AsyncRpc
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payload = await official_payment(sol_server.url, payer, requirement)
    payment = sol_method.verify(payload, requirement, now=1_000.0)
    await sol_rpc.request("studio402_expireBlockhash")

    assert await sol_method.simulate(payment) == Reason.BLOCKHASH_EXPIRED
    outcome = await sol_method.settle(payment, on_signed=_no_hook, timeout=5)
    assert outcome.status is SettleStatus.REVERTED and outcome.reason == Reason.BLOCKHASH_EXPIRED
    assert _balances(sol_server, payer.pubkey(), sol_server.devnet.pay_to.pubkey()) == [1_000_000, 0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 39_999}, Reason.AMOUNT_MISMATCH),
        ({"amount": 40_001}, Reason.AMOUNT_MISMATCH),
        ({"mint": Keypair().pubkey()}, Reason.MINT_MISMATCH),
        ({"destination_owner": Keypair().pubkey()}, Reason.RECIPIENT_MISMATCH),
        ({"authority": "fee_payer"}, Reason.FEE_PAYER_TRANSFERRING),
        ({"memo_accounts": "fee_payer"}, Reason.FEE_PAYER_TRANSFERRING),
    ],
)
async def test_hostile_transactions_are_refused_and_nothing_moves(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod, change: dict[str, object], reason: Reason
) -> None:
    dev = sol_server.devnet
    payer = Keypair()
    dev.fund(str(payer.pubkey()), 1_000_000)
    dev.fund(str(dev.fee_payer.pubkey()), 1_000_000)  # something to drain if a check were missing
    if change.get("authority") == "fee_payer":
        change = {"authority": dev.fee_payer}
    if change.get("memo_accounts") == "fee_payer":
        change = {"memo_accounts": [AccountMeta(dev.fee_payer.pubkey(), True, False)]}
    payload = _hostile(sol_server, payer, **change)  # type: ignore[arg-type]
    requirement = sol_method.offer.requirement(PRICE_MICROS)

    with pytest.raises(PaymentRejected) as info:
        sol_method.verify(payload, requirement, now=1_000.0)
    assert info.value.code == reason
    owners = (payer.pubkey(), dev.pay_to.pubkey(), dev.fee_payer.pubkey())
    assert _balances(sol_server, *owners) == [1_000_000, 0, 1_000_000]


async def test_a_hand_built_honest_transaction_passes(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod
) -> None:
    """The hostile builder differs from an accepted payment only in what each case changes."""
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    payment = sol_method.verify(
        _hostile(sol_server, payer), sol_method.offer.requirement(PRICE_MICROS), 1_000.0
    )
    assert (await sol_method.settle(payment, on_signed=_no_hook, timeout=5)).status is SettleStatus.SETTLED


async def test_underfunded_payer_is_refused_before_sending(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 10_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payment = sol_method.verify(
        await official_payment(sol_server.url, payer, requirement), requirement, 1_000.0
    )
    assert await sol_method.simulate(payment) == Reason.SIMULATION_FAILED
    assert _balances(sol_server, payer.pubkey(), sol_server.devnet.pay_to.pubkey()) == [10_000, 0]


async def test_mangled_transactions_are_refused_never_crash(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod
) -> None:
    """Every truncation and every single-byte change of a good payment is a payment error (4xx), not a 500."""
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    good = await official_payment(sol_server.url, payer, requirement)
    raw = base64.b64decode(good.payload["transaction"])
    variants = [raw[:cut] for cut in range(len(raw))]
    variants += [raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :] for i in range(len(raw))]
    key = sol_method.verify(good, requirement, now=1_000.0).nonce
    accepted = []
    for variant in variants:
        payload = good.model_copy(update={"payload": {"transaction": base64.b64encode(variant).decode()}})
        sol_method.claimed(payload)  # the ledger's pre-check answers (a tuple or None), never raises
        try:
            accepted.append(sol_method.verify(payload, requirement, now=1_000.0).nonce)
        except PaymentError:
            pass
    # Only the fee-payer slot (bytes 1-64, ours to fill) may change, and it is still the same payment: the
    # key is the signature we put there, not what the client sent.
    assert accepted == [key] * 64


class _LostSends(AsyncRpc):
    """An RPC whose sendTransaction answers are lost before the node got them (nothing is sent)."""

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        if method == "sendTransaction":
            raise RpcUnavailable("connection reset", request_sent=True)
        return await super().request(method, params)


async def test_an_unknown_settlement_is_decided_later_from_chain_facts(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod, sol_rpc: AsyncRpc
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 1_000_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payment = sol_method.verify(
        await official_payment(sol_server.url, payer, requirement), requirement, 1_000.0
    )
    lossy = _LostSends(sol_server.url)
    try:
        outcome = await SvmSettler(lossy).settle(payment, on_signed=_no_hook, timeout=0.2)
    finally:
        await lossy.aclose()
    assert outcome.status is SettleStatus.UNKNOWN and outcome.tx_hash == payment.nonce
    assert _balances(sol_server, payer.pubkey()) == [1_000_000]

    # The reconciler asks again: still unknown, so the same bytes are re-sent; then the chain shows it paid.
    assert (await sol_method.lookup(payment, outcome.tx_hash, payment.raw)).status is SettleStatus.UNKNOWN
    assert (await sol_method.lookup(payment, outcome.tx_hash, payment.raw)).status is SettleStatus.SETTLED
    assert _balances(sol_server, payer.pubkey()) == [960_000]


async def test_a_send_refused_by_preflight_raises_and_charges_nothing(
    sol_server: SolanaRpcServer, sol_method: SvmExactMethod
) -> None:
    payer = Keypair()
    sol_server.devnet.fund(str(payer.pubkey()), 10_000)
    requirement = sol_method.offer.requirement(PRICE_MICROS)
    payment = sol_method.verify(
        await official_payment(sol_server.url, payer, requirement), requirement, 1_000.0
    )
    with pytest.raises(ChainError) as info:
        await sol_method.settle(payment, on_signed=_no_hook, timeout=5)
    assert info.value.code == "svm_send_refused"
    assert _balances(sol_server, payer.pubkey(), sol_server.devnet.pay_to.pubkey()) == [10_000, 0]
