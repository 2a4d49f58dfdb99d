"""TestUSDC on a real anvil: EIP-3009 settlement, FiatToken revert strings, x402 reason mapping."""

from __future__ import annotations

import os
import time

import pytest
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_utils.crypto import keccak
from x402 import x402Facilitator
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.mechanisms.evm.exact.client import ExactEvmScheme
from x402.schemas import PaymentPayload, PaymentRequirements

from studio402.chain.devnet import Devnet
from studio402.chain.errors import ExecutionReverted
from studio402.chain.rpc import receipt_succeeded
from studio402.chain.token import (
    AUTHORIZATION_USED_TOPIC,
    SECP256K1_N,
    TransferAuthorization,
    authorization_digest,
    cancel_authorization_digest,
    decode_bool,
    eip712_domain_separator,
    encode_authorization_state,
    encode_cancel_authorization,
    encode_mint,
    encode_receive_with_authorization,
    encode_transfer,
    encode_transfer_with_authorization,
    revert_reason_to_x402,
    sign_digest,
    transfers_in_receipt,
)
from studio402.chain.wallet import SettlerWallet
from tests.devnet_fixture import Payer, authorize, new_payer

RECEIVE_TYPEHASH = keccak(
    text="ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    "uint256 validBefore,bytes32 nonce)"
)


async def _view(devnet: Devnet, signature: str, out_type: str) -> object:
    data = await devnet.rpc.call(devnet.info.token, keccak(text=signature)[:4])
    return abi_decode([out_type], data)[0]


async def _used(devnet: Devnet, payer: str, nonce: bytes) -> bool:
    return decode_bool(await devnet.rpc.call(devnet.info.token, encode_authorization_state(payer, nonce)))


async def _simulate(devnet: Devnet, settler: SettlerWallet, data: bytes) -> ExecutionReverted:
    with pytest.raises(ExecutionReverted) as info:
        await devnet.rpc.call(devnet.info.token, data, from_=settler.address)
    return info.value


async def test_token_metadata_and_domain(devnet: Devnet) -> None:
    info = devnet.info
    assert await _view(devnet, "name()", "string") == "USD Coin"
    assert await _view(devnet, "symbol()", "string") == "USDC"
    assert await _view(devnet, "version()", "string") == "2"
    assert await _view(devnet, "decimals()", "uint8") == 6
    assert await _view(devnet, "minter()", "address") == Account.from_key(info.minter_key).address.lower()
    on_chain = await _view(devnet, "DOMAIN_SEPARATOR()", "bytes32")
    assert on_chain == eip712_domain_separator("USD Coin", "2", info.chain_id, info.token)
    assert await devnet.balance_of(info.demo_payer) >= 0


async def test_settle_moves_balances(devnet: Devnet, settler: SettlerWallet) -> None:
    payer = await new_payer(devnet, 5_000_000)
    pay_to = devnet.info.pay_to
    before = await devnet.balance_of(pay_to)
    auth, signature = authorize(devnet, payer, 1_250_000)
    data = encode_transfer_with_authorization(auth, signature)
    assert await devnet.rpc.call(devnet.info.token, data, from_=settler.address) == b""  # simulation passes
    receipt = await settler.send_and_wait(devnet.info.token, data, timeout=10)
    assert receipt_succeeded(receipt)
    assert await devnet.balance_of(payer.address) == 3_750_000
    assert await devnet.balance_of(pay_to) == before + 1_250_000
    assert await _used(devnet, payer.address, auth.nonce)
    [transfer] = transfers_in_receipt(receipt, devnet.info.token)
    assert (transfer.sender, transfer.receiver, transfer.value) == (payer.address, pay_to, 1_250_000)
    topics = [log["topics"][0] for log in receipt["logs"]]
    assert AUTHORIZATION_USED_TOPIC in topics


def _high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


async def _failing_case(devnet: Devnet, settler: SettlerWallet, case: str, payer: Payer) -> bytes:
    now = int(time.time())
    if case == "replay":
        auth, sig = authorize(devnet, payer, 1000)
        data = encode_transfer_with_authorization(auth, sig)
        assert receipt_succeeded(await settler.send_and_wait(devnet.info.token, data, timeout=10))
        return data
    if case == "expired":
        auth, sig = authorize(devnet, payer, 1000, valid_before=now - 10)
    elif case == "not_yet_valid":
        auth, sig = authorize(devnet, payer, 1000, valid_after=now + 3600)
    elif case == "wrong_signer":
        auth, _ = authorize(devnet, payer, 1000)
        _, sig = authorize(devnet, await new_payer(devnet), 1000, nonce=auth.nonce)
    elif case == "high_s":
        auth, sig = authorize(devnet, payer, 1000)
        sig = _high_s(sig)
    else:  # insufficient balance
        auth, sig = authorize(devnet, payer, 10**12)
    return encode_transfer_with_authorization(auth, sig)


@pytest.mark.parametrize(
    ("case", "revert", "x402_reason"),
    [
        ("replay", "FiatTokenV2: authorization is used or canceled", "invalid_exact_evm_nonce_already_used"),
        (
            "expired",
            "FiatTokenV2: authorization is expired",
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "not_yet_valid",
            "FiatTokenV2: authorization is not yet valid",
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        ("wrong_signer", "FiatTokenV2: invalid signature", "invalid_exact_evm_payload_signature"),
        ("high_s", "ECRecover: invalid signature 's' value", "invalid_exact_evm_payload_signature"),
        ("insufficient", "ERC20: transfer amount exceeds balance", "insufficient_funds"),
    ],
)
async def test_failures_revert_with_fiattoken_strings(
    devnet: Devnet, settler: SettlerWallet, case: str, revert: str, x402_reason: str
) -> None:
    payer = await new_payer(devnet, 100_000)
    data = await _failing_case(devnet, settler, case, payer)
    error = await _simulate(devnet, settler, data)
    assert error.reason == revert
    assert revert_reason_to_x402(error.reason) == x402_reason
    # estimate_gas (what a naive sender runs first) reports the same reason.
    with pytest.raises(ExecutionReverted, match=revert):
        await devnet.rpc.estimate_gas(devnet.info.token, data, from_=settler.address)


async def test_forced_replay_is_mined_as_reverted(devnet: Devnet, settler: SettlerWallet) -> None:
    """Sending without simulating: the receipt says status 0 (reverted), which is not an unknown outcome."""
    payer = await new_payer(devnet, 100_000)
    data = await _failing_case(devnet, settler, "replay", payer)
    receipt = await settler.send_and_wait(devnet.info.token, data, timeout=10)
    assert not receipt_succeeded(receipt)
    assert await devnet.balance_of(payer.address) == 99_000


async def test_receive_with_authorization_only_by_payee(devnet: Devnet, settler: SettlerWallet) -> None:
    payer = await new_payer(devnet, 10_000)
    info = devnet.info
    auth, _ = authorize(devnet, payer, 4_000)
    separator = eip712_domain_separator(info.token_name, info.token_version, info.chain_id, info.token)
    signature = sign_digest(authorization_digest(RECEIVE_TYPEHASH, auth, separator), payer.key)
    data = encode_receive_with_authorization(auth, signature)
    error = await _simulate(devnet, settler, data)
    assert error.reason == "FiatTokenV2: caller must be the payee"
    operator = SettlerWallet(devnet.rpc, info.refund_key)
    assert receipt_succeeded(await operator.send_and_wait(info.token, data, timeout=10))
    assert await devnet.balance_of(payer.address) == 6_000


async def test_cancel_authorization_blocks_its_use(devnet: Devnet, settler: SettlerWallet) -> None:
    payer = await new_payer(devnet, 10_000)
    info = devnet.info
    auth, signature = authorize(devnet, payer, 1_000)
    separator = eip712_domain_separator(info.token_name, info.token_version, info.chain_id, info.token)
    cancel_sig = sign_digest(cancel_authorization_digest(payer.address, auth.nonce, separator), payer.key)
    cancel = encode_cancel_authorization(payer.address, auth.nonce, cancel_sig)
    receipt = await settler.send_and_wait(info.token, cancel, timeout=10)
    assert receipt_succeeded(receipt)
    assert await _used(devnet, payer.address, auth.nonce)
    error = await _simulate(devnet, settler, encode_transfer_with_authorization(auth, signature))
    assert error.reason == "FiatTokenV2: authorization is used or canceled"


async def test_only_the_minter_mints(devnet: Devnet, settler: SettlerWallet) -> None:
    error = await _simulate(devnet, settler, encode_mint(settler.address, 1))
    assert error.reason == "FiatToken: caller is not a minter"


async def test_plain_transfer_needs_balance(devnet: Devnet) -> None:
    poor = Account.create().address
    with pytest.raises(ExecutionReverted, match="ERC20: transfer amount exceeds balance"):
        await devnet.rpc.call(devnet.info.token, encode_transfer(devnet.info.pay_to, 1), from_=poor)


async def test_x402_sdk_signed_payment_settles(devnet: Devnet, settler: SettlerWallet) -> None:
    """What the official x402 client signs is accepted by our token through our settler."""
    payer = await new_payer(devnet, 50_000)
    info = devnet.info
    requirements = PaymentRequirements(
        scheme="exact",
        network=info.network,
        asset=info.token,
        amount="20000",
        pay_to=info.pay_to,
        max_timeout_seconds=300,
        extra={"name": info.token_name, "version": info.token_version},
    )
    payload = ExactEvmScheme(Account.from_key(payer.key)).create_payment_payload(requirements)
    auth = TransferAuthorization.from_json(payload["authorization"])
    signature = bytes.fromhex(payload["signature"].removeprefix("0x"))
    receipt = await settler.send_and_wait(
        info.token, encode_transfer_with_authorization(auth, signature), timeout=10
    )
    assert receipt_succeeded(receipt)
    assert await devnet.balance_of(payer.address) == 30_000
    assert await _used(devnet, payer.address, auth.nonce)
    assert not await _used(devnet, payer.address, os.urandom(32))


async def test_x402_sdk_facilitator_verifies_and_settles_on_our_token(devnet: Devnet) -> None:
    """The official SDK facilitator (web3-based) accepts our token and classifies its reverts."""
    info = devnet.info
    facilitator = x402Facilitator()
    signer = FacilitatorWeb3Signer(private_key=info.settler_key, rpc_url=info.rpc_url)
    register_exact_evm_facilitator(facilitator, signer, networks=info.network)
    requirements = PaymentRequirements(
        scheme="exact",
        network=info.network,
        asset=info.token,
        amount="10000",
        pay_to=info.pay_to,
        max_timeout_seconds=300,
        extra={"name": info.token_name, "version": info.token_version},
    )
    payer = await new_payer(devnet, 10_000)
    inner = ExactEvmScheme(Account.from_key(payer.key)).create_payment_payload(requirements)
    payload = PaymentPayload(x402_version=2, payload=inner, accepted=requirements)
    assert (await facilitator.verify(payload, requirements)).is_valid
    assert (await facilitator.settle(payload, requirements)).success
    assert await devnet.balance_of(payer.address) == 0
    replay = await facilitator.verify(payload, requirements)
    assert (replay.is_valid, replay.invalid_reason) == (False, "invalid_exact_evm_nonce_already_used")
