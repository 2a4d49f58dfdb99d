"""The fault-injecting RPC proxy of tests/chainfaults.py, each fault seen through the project's own AsyncRpc:
what the client is told, and what the node behind the proxy really got."""

from __future__ import annotations

import httpx
import pytest
from eth_account import Account

from studio402.chain.devnet import Devnet
from studio402.chain.errors import RpcError, RpcUnavailable
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import (
    AUTHORIZATION_CANCELED_TOPIC,
    encode_transfer,
    encode_transfer_with_authorization,
)
from studio402.chain.txsign import TxSigner, UnsignedTx
from studio402.errors import ChainError
from tests.chainfaults import (
    SEND_RAW,
    SEND_RAW_SYNC,
    Dialect,
    FaultyRpc,
    cancel_first,
    decode_raw_tx,
    frontrun,
    transfer_authorization_in,
)
from tests.devnet_fixture import Payer, authorize, bystander, new_payer

ELSEWHERE = "0x000000000000000000000000000000000000dEaD"


async def _raw_transfer(devnet: Devnet) -> tuple[bytes, str]:
    """A signed 1-wei transfer from a fresh key that holds ETH for gas; (raw, tx hash)."""
    account = Account.create()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10**18)])
    signer = TxSigner(bytes(account.key))
    price = 2 * await devnet.rpc.gas_price()
    tx = UnsignedTx(devnet.info.chain_id, 0, 21_000, bytes.fromhex(ELSEWHERE[2:]), 1, b"", gas_price=price)
    return signer.sign(tx)


def _transfer_calldata(devnet: Devnet, payer: Payer) -> bytes:
    """transferWithAuthorization of $0.25 from `payer` to payTo."""
    auth, signature = authorize(devnet, payer, 250_000)
    return encode_transfer_with_authorization(auth, signature)


def test_raw_transactions_and_authorizations_decode() -> None:
    signer = TxSigner(Account.create().key)
    target = bytes.fromhex(ELSEWHERE[2:])
    for fees in ({"max_fee": 10**10, "tip": 10**9}, {"gas_price": 10**9}):
        raw, tx_hash = signer.sign(UnsignedTx(31337, 7, 90_000, target, 0, b"\x01\x02", **fees))
        tx = decode_raw_tx(raw)
        assert (tx.nonce, tx.to, tx.data, tx.tx_hash) == (7, ELSEWHERE, b"\x01\x02", tx_hash)
    assert transfer_authorization_in(encode_transfer(ELSEWHERE, 5)) is None


async def test_forwards_single_and_batch_calls_on_any_path(devnet: Devnet) -> None:
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(f"{proxy.url}/v2/key?apikey=key") as rpc:
        assert await rpc.chain_id() == devnet.info.chain_id
        number, balance = await rpc.batch(
            [("eth_blockNumber", []), ("eth_getBalance", [devnet.info.demo_payer, "latest"])]
        )
        assert int(number, 16) == await devnet.rpc.block_number()
        assert int(balance, 16) == await devnet.rpc.get_balance(devnet.info.demo_payer)
        assert proxy.calls == ["eth_chainId", "eth_blockNumber", "eth_getBalance"]


@pytest.mark.parametrize("dialect", [Dialect.GETH_TIMEOUT, Dialect.RETH_TIMEOUT])
async def test_a_slow_sync_send_errs_and_the_transaction_is_mined(devnet: Devnet, dialect: Dialect) -> None:
    raw, tx_hash = await _raw_transfer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.sync_dialect(dialect)
        with pytest.raises(RpcError) as caught:
            await rpc.send_raw_transaction_sync(raw)
    error = caught.value
    assert (error.rpc_code, error.data) == (4, tx_hash)
    if dialect is Dialect.GETH_TIMEOUT:
        assert (
            error.rpc_message
            == "the transaction was added to the transaction pool but wasn't processed in 2s"
        )
    else:
        assert (
            error.rpc_message
            == f"transaction {tx_hash} was added to the mempool but wasn't confirmed within 2s"
        )
    assert receipt_succeeded(await devnet.rpc.wait_for_receipt(tx_hash, timeout=10))
    assert proxy.calls == [SEND_RAW_SYNC] and proxy.sends == [raw]


async def test_a_node_without_the_sync_method_gets_nothing_and_the_wallet_falls_back(devnet: Devnet) -> None:
    raw, tx_hash = await _raw_transfer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.sync_dialect(Dialect.NO_SYNC)
        with pytest.raises(RpcError) as caught:
            await rpc.send_raw_transaction_sync(raw)
        assert caught.value.rpc_code == -32601
        assert await devnet.rpc.get_transaction(tx_hash) is None
        wallet = await bystander(devnet, rpc)
        _, receipt = await wallet.send_for_receipt(ELSEWHERE, b"", gas=21_000, timeout=10)
    assert receipt_succeeded(receipt)
    assert proxy.calls.count(SEND_RAW_SYNC) == 2 and SEND_RAW in proxy.calls


async def test_a_dropped_send_is_answered_but_never_reaches_the_node(devnet: Devnet) -> None:
    raw, tx_hash = await _raw_transfer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.drop_next_sends(2)
        assert await rpc.send_raw_transaction(raw) == tx_hash
        proxy.sync_dialect(Dialect.GETH_TIMEOUT)
        with pytest.raises(RpcError) as caught:  # a sync send the node loses: "not processed in time"
            await rpc.send_raw_transaction_sync(raw)
        assert (caught.value.rpc_code, caught.value.data) == (4, tx_hash)
        assert await devnet.rpc.get_transaction(tx_hash) is None
        assert await rpc.send_raw_transaction(raw) == tx_hash  # the drops are used up: forwarded
    assert receipt_succeeded(await devnet.rpc.wait_for_receipt(tx_hash, timeout=10))
    assert proxy.sends == [raw, raw, raw]


async def test_rate_limits_answer_429_with_retry_after(devnet: Devnet) -> None:
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.rate_limit(1, retry_after=3)
        async with httpx.AsyncClient() as http:
            call = {"jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber", "params": []}
            limited = await http.post(proxy.url, json=call)
            assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
            assert limited.json() == {
                "jsonrpc": "2.0",
                "id": 7,
                "error": {"code": -32005, "message": "rate limited"},
            }
            assert (await http.post(proxy.url, json=call)).status_code == 200
        proxy.rate_limit(1)
        with pytest.raises(RpcError) as caught:
            await rpc.block_number()
        assert caught.value.rpc_code == -32005
        assert await rpc.block_number() >= 1
        proxy.rate_limit_method("eth_getTransactionReceipt", 1)
        assert await rpc.block_number() >= 1  # other methods pass
        with pytest.raises(ChainError):  # a batch carrying the method is refused whole
            await rpc.batch([("eth_blockNumber", []), ("eth_getTransactionReceipt", ["0x" + "00" * 32])])
        assert await rpc.get_transaction_receipt("0x" + "00" * 32) is None


async def test_an_outage_refuses_connections_so_nothing_was_sent(devnet: Devnet) -> None:
    raw, tx_hash = await _raw_transfer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        assert await rpc.block_number() >= 1
        proxy.outage(True)
        for attempt in (rpc.block_number(), rpc.send_raw_transaction(raw)):
            with pytest.raises(RpcUnavailable) as caught:
                await attempt
            assert caught.value.request_sent is False
        assert await devnet.rpc.get_transaction(tx_hash) is None
        proxy.outage(False)
        assert await rpc.send_raw_transaction(raw) == tx_hash
    assert receipt_succeeded(await devnet.rpc.wait_for_receipt(tx_hash, timeout=10))


async def test_injected_errors_and_lost_answers(devnet: Devnet) -> None:
    raw, tx_hash = await _raw_transfer(devnet)
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.fail_method(SEND_RAW, {"code": -32000, "message": "transaction underpriced"})
        with pytest.raises(RpcError) as caught:
            await rpc.send_raw_transaction(raw)
        assert (caught.value.rpc_code, caught.value.rpc_message) == (-32000, "transaction underpriced")
        assert await devnet.rpc.get_transaction(tx_hash) is None  # a refusal: nothing forwarded
        proxy.fail_method(SEND_RAW, ConnectionResetError())
        with pytest.raises(RpcUnavailable) as lost:
            await rpc.send_raw_transaction(raw)
        assert lost.value.request_sent is True
    assert receipt_succeeded(await devnet.rpc.wait_for_receipt(tx_hash, timeout=10))  # it went through


async def test_a_front_run_lands_first_and_ours_reverts(devnet: Devnet) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = _transfer_calldata(devnet, payer)
    theirs: list[str | None] = []

    async def front_run(raw: bytes) -> None:
        theirs.append(await frontrun(devnet, raw))

    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.before_send(front_run)
        ours = await (await bystander(devnet, rpc)).send_and_wait(devnet.info.token, data, timeout=30)
    assert not receipt_succeeded(ours)
    [their_hash] = theirs
    assert their_hash is not None
    their = await devnet.rpc.get_transaction_receipt(their_hash)
    assert their is not None and receipt_succeeded(their)
    order = [(int(r["blockNumber"], 16), int(r["transactionIndex"], 16)) for r in (their, ours)]
    assert order[0] < order[1]
    assert await devnet.balance_of(payer.address) == 750_000  # charged once, by the bystander's copy
    assert await frontrun(devnet, (await _raw_transfer(devnet))[0]) is None  # not an authorization


async def test_a_cancellation_lands_before_our_transfer(devnet: Devnet) -> None:
    payer = await new_payer(devnet, 1_000_000)
    data = _transfer_calldata(devnet, payer)
    auth = transfer_authorization_in(data)
    assert auth is not None and auth.from_address == payer.address
    async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
        proxy.before_send(lambda raw: cancel_first(devnet, payer.key, raw))
        wallet = await bystander(devnet, rpc)
        _, receipt = await wallet.send_for_receipt(devnet.info.token, data, gas=200_000, timeout=30)
    assert not receipt_succeeded(receipt)
    assert await devnet.balance_of(payer.address) == 1_000_000
    payer_topic = "0x" + "00" * 12 + payer.address[2:].lower()
    canceled = await devnet.rpc.get_logs(
        {
            "address": devnet.info.token,
            "fromBlock": "0x0",
            "topics": [AUTHORIZATION_CANCELED_TOPIC, payer_topic],
        }
    )
    assert [log["topics"][2] for log in canceled] == ["0x" + auth.nonce.hex()]
    assert await cancel_first(devnet, payer.key, None, nonce="0x" + auth.nonce.hex()) is None  # already done


async def test_a_failing_hook_fails_the_test_when_the_proxy_closes(devnet: Devnet) -> None:
    raw, tx_hash = await _raw_transfer(devnet)

    async def broken(raw: bytes) -> None:
        raise RuntimeError("hook bug")

    with pytest.raises(AssertionError, match="hook bug"):
        async with FaultyRpc(devnet.info.rpc_url) as proxy, AsyncRpc(proxy.url) as rpc:
            proxy.before_send(broken)
            assert await rpc.send_raw_transaction(raw) == tx_hash  # forwarded all the same
    assert receipt_succeeded(await devnet.rpc.wait_for_receipt(tx_hash, timeout=10))
