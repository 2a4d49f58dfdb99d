"""AsyncRpc against a real anvil: results, errors, batching, receipts."""

from __future__ import annotations

import os

import httpx
import pytest

from studio402.chain.anvil import free_port
from studio402.chain.devnet import Devnet
from studio402.chain.errors import ExecutionReverted, OutcomeUnknown, ReceiptTimeout, RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc, decode_revert, error_from_response
from studio402.chain.token import (
    TRANSFER_TOPIC,
    decode_transfer_log,
    decode_uint,
    encode_balance_of,
    encode_transfer,
)
from studio402.errors import ChainError
from tests.devnet_fixture import new_payer


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts HTTP requests on their way to the real node."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_reads(devnet: Devnet) -> None:
    rpc, info = devnet.rpc, devnet.info
    assert await rpc.chain_id() == 31337
    assert await rpc.block_number() >= 2
    block = await rpc.get_block("latest")
    assert block is not None and int(block["number"], 16) >= 2
    assert await rpc.get_block(10**9) is None
    assert len(await rpc.get_code(info.token)) > 1000
    assert await rpc.get_code(os.urandom(20).hex().join(["0x", ""])) == b""
    assert await rpc.gas_price() > 0
    assert await rpc.get_balance(info.demo_payer) > 0  # anvil funds its dev accounts with ETH
    assert await rpc.get_transaction_count(info.demo_payer, "latest") == 0  # payers never send
    balance = decode_uint(await rpc.call(info.token, encode_balance_of(info.demo_payer)))
    assert balance == await devnet.balance_of(info.demo_payer)


async def test_chain_id_is_cached(devnet: Devnet) -> None:
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        rpc = AsyncRpc(devnet.info.rpc_url, client=client)
        assert await rpc.chain_id() == await rpc.chain_id() == 31337
        assert transport.requests == 1
        await rpc.aclose()  # a borrowed client stays open
        assert not client.is_closed


async def test_batch_is_one_request_in_call_order(devnet: Devnet) -> None:
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        rpc = AsyncRpc(devnet.info.rpc_url, client=client)
        calls = [
            ("eth_chainId", []),
            ("eth_blockNumber", []),
            ("eth_getBalance", [devnet.info.pay_to, "latest"]),
        ]
        chain, number, balance = await rpc.batch(calls)
        assert transport.requests == 1
        assert int(chain, 16) == 31337 and int(number, 16) >= 0 and int(balance, 16) > 0
        poor = "0x" + os.urandom(20).hex()
        revert = (
            "eth_call",
            [{"from": poor, "to": devnet.info.token, "data": "0x" + encode_transfer(poor, 1).hex()}],
        )
        results = await rpc.batch([("eth_chainId", []), revert], return_exceptions=True)
        assert results[0] == "0x7a69"
        assert isinstance(results[1], ExecutionReverted)
        assert results[1].reason == "ERC20: transfer amount exceeds balance"
        with pytest.raises(ExecutionReverted):
            await rpc.batch([("eth_chainId", []), revert])
        assert await rpc.batch([]) == []


async def test_revert_reason_is_extracted(devnet: Devnet) -> None:
    poor = "0x" + os.urandom(20).hex()
    with pytest.raises(ExecutionReverted) as info:
        await devnet.rpc.call(devnet.info.token, encode_transfer(poor, 5), from_=poor)
    error = info.value
    assert isinstance(error, RpcError) and isinstance(error, ChainError)
    assert error.reason == "ERC20: transfer amount exceeds balance"
    assert error.revert_data[:4].hex() == "08c379a0"
    assert error.code == "execution_reverted"


async def test_non_revert_errors_are_rpc_errors(devnet: Devnet) -> None:
    with pytest.raises(RpcError) as info:
        await devnet.rpc.request("eth_noSuchMethod", [])
    assert not isinstance(info.value, ExecutionReverted)
    assert info.value.rpc_code is not None


def test_error_shapes_from_other_nodes() -> None:
    panic = bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big")
    nested = error_from_response(
        "eth_call", {"code": -32000, "message": "execution reverted", "data": {"data": "0x" + panic.hex()}}
    )
    assert isinstance(nested, ExecutionReverted) and nested.reason == "panic: 0x11"
    bare = error_from_response("eth_call", {"code": 3, "message": "execution reverted: custom text"})
    assert isinstance(bare, ExecutionReverted) and bare.reason == "custom text"
    assert decode_revert(bytes.fromhex("deadbeef")) == "custom error 0xdeadbeef"
    other = error_from_response("eth_sendRawTransaction", {"code": -32003, "message": "nonce too low"})
    assert type(other) is RpcError and other.rpc_message == "nonce too low"


async def test_unreachable_node_is_rpc_unavailable_not_sent() -> None:
    async with AsyncRpc(f"http://127.0.0.1:{free_port()}", timeout=2) as rpc:
        with pytest.raises(RpcUnavailable) as info:
            await rpc.block_number()
    assert info.value.request_sent is False


async def test_receipt_timeout_is_an_unknown_outcome(devnet: Devnet) -> None:
    unknown = "0x" + os.urandom(32).hex()
    assert await devnet.rpc.get_transaction_receipt(unknown) is None
    with pytest.raises(ReceiptTimeout) as info:
        await devnet.rpc.wait_for_receipt(unknown, timeout=0.2)
    assert isinstance(info.value, OutcomeUnknown) and isinstance(info.value, ChainError)
    assert info.value.tx_hash == unknown


async def test_get_logs_finds_transfers(devnet: Devnet) -> None:
    payer = await new_payer(devnet, 777)
    topic_to = "0x" + bytes(12).hex() + payer.address[2:].lower()
    logs = await devnet.rpc.get_logs(
        {
            "address": devnet.info.token,
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [TRANSFER_TOPIC, None, topic_to],
        }
    )
    events = [decode_transfer_log(log) for log in logs]
    assert [(e.sender, e.receiver, e.value) for e in events if e] == [
        ("0x0000000000000000000000000000000000000000", payer.address, 777)
    ]
