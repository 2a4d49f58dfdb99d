"""SettlerWallet on a real anvil: concurrent sends, nonce recovery, and the broadcast error contract."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest
from eth_account import Account

from studio402.chain.devnet import Devnet
from studio402.chain.errors import BroadcastUncertain, OutcomeUnknown, ReceiptTimeout, RpcError
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import encode_mint, encode_transfer, encode_transfer_with_authorization
from studio402.chain.wallet import DEFAULT_GAS_LIMIT, SettlerWallet
from tests.chainfaults import FaultyRpc
from tests.devnet_fixture import authorize, new_payer


async def _fresh_wallet(
    devnet: Devnet, rpc: AsyncRpc | None = None, *, gas_limit_default: int | None = DEFAULT_GAS_LIMIT
) -> SettlerWallet:
    """A new key with 10 ETH for gas, so nonces start at 0 and no other test shares them."""
    account = Account.create()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10 * 10**18)])
    key = "0x" + bytes(account.key).hex()
    wallet = SettlerWallet(rpc or devnet.rpc, key, gas_limit_default=gas_limit_default)
    KEYS[wallet.address] = key
    return wallet


KEYS: dict[str, str] = {}  # wallet address -> its key, for tests that open a second wallet on one key


async def _nonce_of(devnet: Devnet, receipt: dict[str, object]) -> int:
    tx = await devnet.rpc.get_transaction(str(receipt["transactionHash"]))
    assert tx is not None
    return int(tx["nonce"], 16)


async def _signed_settlements(devnet: Devnet, count: int, value: int = 1_000) -> list[bytes]:
    payers = await asyncio.gather(*(new_payer(devnet, value) for _ in range(count)))
    return [encode_transfer_with_authorization(*authorize(devnet, p, value)) for p in payers]


async def test_20_concurrent_settlements_get_distinct_nonces(devnet: Devnet) -> None:
    wallet = await _fresh_wallet(devnet)
    calls = await _signed_settlements(devnet, 20)
    before = await devnet.balance_of(devnet.info.pay_to)
    receipts = await asyncio.gather(*(wallet.send_and_wait(devnet.info.token, c, timeout=20) for c in calls))
    assert all(receipt_succeeded(r) for r in receipts)
    assert sorted([await _nonce_of(devnet, r) for r in receipts]) == list(range(20))
    assert await devnet.balance_of(devnet.info.pay_to) == before + 20 * 1_000


async def test_20_concurrent_mints_and_transfers_from_the_minter(devnet: Devnet) -> None:
    """A second wallet object on the devnet's own minter key: both must keep working."""
    minter = SettlerWallet(devnet.rpc, devnet.info.minter_key)
    targets = [Account.create().address for _ in range(10)]
    await devnet.fund(minter.address, 10_000)
    mints = [minter.send_and_wait(devnet.info.token, encode_mint(t, 5), timeout=20) for t in targets]
    sends = [minter.send_and_wait(devnet.info.token, encode_transfer(t, 7), timeout=20) for t in targets]
    receipts = await asyncio.gather(*mints, *sends)
    assert all(receipt_succeeded(r) for r in receipts)
    nonces = [await _nonce_of(devnet, r) for r in receipts]
    assert len(set(nonces)) == 20
    assert [await devnet.balance_of(t) for t in targets] == [12] * 10
    # The devnet's own minter wallet now holds a stale nonce: it must resync by itself.
    fresh = Account.create().address
    await devnet.fund(fresh, 3)
    assert await devnet.balance_of(fresh) == 3


async def test_two_wallets_on_one_key_recover_from_nonce_too_low(devnet: Devnet) -> None:
    account = Account.create()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10 * 10**18)])
    key = "0x" + bytes(account.key).hex()
    first, second = SettlerWallet(devnet.rpc, key), SettlerWallet(devnet.rpc, key)
    target = Account.create().address
    assert receipt_succeeded(await first.send_and_wait(target, b"", timeout=10))
    assert receipt_succeeded(await second.send_and_wait(target, b"", timeout=10))  # learns nonce 1
    assert receipt_succeeded(await first.send_and_wait(target, b"", timeout=10))  # had 1: too low, resyncs
    assert await devnet.rpc.get_transaction_count(first.address, "latest") == 3


async def test_a_lost_send_whose_nonce_another_wallet_took_is_signed_anew(devnet: Devnet) -> None:
    """The devnet's faucet: a send the node lost (here: a proxy that drops it), whose nonce another wallet on
    the key then used, can never land; send_and_wait signs it again instead of waiting out its timeout (the
    chaos suite's payers once failed on such a mint)."""
    account = Account.create()
    await devnet.rpc.request("anvil_setBalance", [account.address, hex(10 * 10**18)])
    key = "0x" + bytes(account.key).hex()
    target = Account.create().address
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        rpc = AsyncRpc(proxy.url)
        try:
            lossy = SettlerWallet(rpc, key)
            proxy.drop_next_sends(1)
            sending = asyncio.create_task(lossy.send_and_wait(target, b"", timeout=20, value=7))
            while not proxy.sends:
                await asyncio.sleep(0.01)
            other = SettlerWallet(devnet.rpc, key)  # takes nonce 0 before the lost one is re-sent
            assert receipt_succeeded(await other.send_and_wait(target, b"", timeout=10, value=5))
            receipt = await sending
        finally:
            await rpc.aclose()
    assert receipt_succeeded(receipt)
    assert await _nonce_of(devnet, receipt) == 1
    assert await devnet.rpc.get_balance(target) == 12
    assert len(proxy.sends) >= 2  # the lost one (and maybe its re-sends), then a new transaction


async def test_refused_transaction_gives_its_nonce_back(devnet: Devnet) -> None:
    wallet = await _fresh_wallet(devnet)
    target = Account.create().address
    with pytest.raises(RpcError) as info:
        await wallet.send(target, b"", gas=10**9)  # above the block gas limit
    assert not isinstance(info.value, OutcomeUnknown)
    receipt = await wallet.send_and_wait(target, b"", timeout=10)
    assert await _nonce_of(devnet, receipt) == 0  # no gap was left behind


async def test_no_gas_money_means_not_broadcast(devnet: Devnet) -> None:
    broke = SettlerWallet(devnet.rpc, "0x" + bytes(Account.create().key).hex())
    with pytest.raises(RpcError, match="(?i)insufficient funds") as info:
        await broke.send(devnet.info.token, encode_transfer(devnet.info.pay_to, 1))
    assert not isinstance(info.value, OutcomeUnknown)


async def test_estimated_gas(devnet: Devnet) -> None:
    wallet = await _fresh_wallet(devnet, gas_limit_default=None)
    [call] = await _signed_settlements(devnet, 1)
    receipt = await wallet.send_and_wait(devnet.info.token, call, timeout=10)
    assert receipt_succeeded(receipt)
    tx = await devnet.rpc.get_transaction(receipt["transactionHash"])
    assert tx is not None and int(tx["gas"], 16) < 150_000  # estimate + 20 %, not the fixed default


class LoseBroadcastResponses(httpx.AsyncBaseTransport):
    """Delivers eth_sendRawTransaction to the node, then loses the answer (as a dropped connection would)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if b"eth_sendRawTransaction" in request.content:
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_lost_broadcast_answer_is_an_unknown_outcome_with_the_real_hash(devnet: Devnet) -> None:
    async with httpx.AsyncClient(transport=LoseBroadcastResponses()) as client:
        flaky = AsyncRpc(devnet.info.rpc_url, client=client)
        wallet = await _fresh_wallet(devnet, flaky)
        [call] = await _signed_settlements(devnet, 1)
        with pytest.raises(BroadcastUncertain) as info:
            await wallet.send(devnet.info.token, call)
    # The hash we were given is the one that actually landed.
    receipt = await devnet.rpc.wait_for_receipt(info.value.tx_hash, timeout=10)
    assert receipt_succeeded(receipt)
    # And the wallet asks the node for its next nonce instead of guessing.
    again = SettlerWallet(devnet.rpc, KEYS[wallet.address])
    await again.resync()
    assert receipt_succeeded(await again.send_and_wait(Account.create().address, b"", timeout=10))


async def test_receipt_timeout_then_mined(devnet: Devnet) -> None:
    """The node lost the transaction: no receipt in time is an unknown outcome carrying the real hash, and
    the same bytes, sent again, land under that hash (on automine and on a block clock alike)."""
    async with FaultyRpc(devnet.info.rpc_url) as proxy:
        rpc = AsyncRpc(proxy.url)
        try:
            wallet = await _fresh_wallet(devnet, rpc)
            proxy.drop_next_sends(1_000)
            with pytest.raises(ReceiptTimeout) as info:
                await wallet.send_and_wait(Account.create().address, b"", timeout=0.3)
            assert isinstance(info.value, OutcomeUnknown)
        finally:
            await rpc.aclose()
        await devnet.rpc.send_raw_transaction(proxy.sends[-1])
    receipt = await devnet.rpc.wait_for_receipt(info.value.tx_hash, timeout=10)
    assert receipt_succeeded(receipt)


async def test_measure_settlement_latency_and_throughput(
    devnet: Devnet, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measures (never asserts timings): simulate + send + receipt, one at a time and 20 in flight."""
    wallet = await _fresh_wallet(devnet)
    token = devnet.info.token
    sequential = await _signed_settlements(devnet, 30)
    latencies = []
    for call in sequential:
        started = time.perf_counter()
        await devnet.rpc.call(token, call, from_=wallet.address)
        receipt = await wallet.send_and_wait(token, call, timeout=20)
        latencies.append((time.perf_counter() - started) * 1000)
        assert receipt_succeeded(receipt)
    concurrent = await _signed_settlements(devnet, 100)
    gate = asyncio.Semaphore(20)

    async def settle(call: bytes) -> dict[str, object]:
        async with gate:
            await devnet.rpc.call(token, call, from_=wallet.address)
            return await wallet.send_and_wait(token, call, timeout=30)

    started = time.perf_counter()
    receipts = await asyncio.gather(*(settle(c) for c in concurrent))
    elapsed = time.perf_counter() - started
    assert all(receipt_succeeded(r) for r in receipts)
    checkpoint_started = time.perf_counter()
    await devnet.checkpoint()
    checkpoint_ms = (time.perf_counter() - checkpoint_started) * 1000
    state_kb = (devnet.root / "state.json").stat().st_size / 1024
    with capsys.disabled():
        print(
            f"\n[measure] settle (simulate+send+receipt) median {statistics.median(latencies):.1f} ms, "
            f"p90 {sorted(latencies)[26]:.1f} ms over 30; 100 settlements, 20 in flight: {elapsed:.2f} s "
            f"= {100 / elapsed:.0f} tx/s; checkpoint {checkpoint_ms:.0f} ms for {state_kb:.0f} KiB of state"
        )
