"""A thin async Ethereum JSON-RPC client over one keep-alive httpx.AsyncClient.

Raw JSON-RPC on purpose: web3.py's per-call overhead (middlewares, extra eth_chainId calls) costs more than
the node itself takes to answer (anvil: ~2 ms per raw eth_call, 4-6 ms through web3). Values come back as
plain Python types: ints for quantities, bytes for data, dicts for receipts / blocks / logs (the node's JSON,
unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx
from eth_abi.abi import decode as abi_decode

from studio402.chain.errors import (
    BroadcastUncertain,
    ExecutionReverted,
    OutcomeUnknown,
    ReceiptTimeout,
    RpcError,
    RpcUnavailable,
)
from studio402.errors import ChainError
from studio402.redact import redact_url, safe_repr

__all__ = [
    "AsyncRpc",
    "BroadcastUncertain",
    "ExecutionReverted",
    "OutcomeUnknown",
    "ReceiptTimeout",
    "RpcError",
    "RpcUnavailable",
    "decode_revert",
    "error_from_response",
    "receipt_succeeded",
]

BlockId = str | int

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
# Raised before the request left this process: the node cannot have seen it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _block_id(block: BlockId) -> str:
    return hex(block) if isinstance(block, int) else block


def _hex_bytes(value: str | None) -> bytes:
    return bytes.fromhex(value[2:]) if value and value != "0x" else b""


def _error_data(error: dict[str, Any]) -> str | None:
    data = error.get("data")
    if isinstance(data, dict):  # some nodes nest it: {"data": {"data": "0x...", "message": ...}}
        data = data.get("data")
    return data if isinstance(data, str) and data.startswith("0x") else None


def decode_revert(data: bytes) -> str:
    """The human reason in revert data: Error(string), Panic(uint256), else the custom error selector."""
    try:
        if data[:4] == _ERROR_STRING:
            return str(abi_decode(["string"], data[4:])[0])
        if data[:4] == _PANIC:
            return f"panic: 0x{abi_decode(['uint256'], data[4:])[0]:02x}"
    except Exception:  # noqa: S110 - malformed revert payload: fall through to the raw selector
        pass
    return f"custom error 0x{data[:4].hex()}" if data else ""


def error_from_response(method: str, error: dict[str, Any]) -> RpcError:
    """Turn a JSON-RPC error object into RpcError, or ExecutionReverted with the decoded reason."""
    message = str(error.get("message", ""))
    rpc_code = error.get("code") if isinstance(error.get("code"), int) else None
    data_hex = _error_data(error)
    if rpc_code != 3 and "revert" not in message.lower():
        data = error.get("data")
        return RpcError(f"{method}: {message}", rpc_code=rpc_code, rpc_message=message, data=data)
    revert_data = _hex_bytes(data_hex)
    reason = decode_revert(revert_data)
    if not reason:
        reason = message.partition("execution reverted")[2].lstrip(": ").strip()
    return ExecutionReverted(
        f"{method}: execution reverted: {reason or 'no reason'}",
        reason=reason,
        revert_data=revert_data,
        rpc_code=rpc_code,
        rpc_message=message,
        data=error.get("data"),
    )


class AsyncRpc:
    """JSON-RPC client for one EVM node URL. Safe to share between tasks; close with `aclose()`.
    `timeout` applies to the client created here; a passed-in `client` keeps its own (and stays open)."""

    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10) -> None:
        self.url = url
        # aiohttp by default: ~0.3 ms CPU per call against ~3 ms for httpx, and a paid request makes
        # several calls. An httpx client may be passed instead (tests inject failing transports that way).
        self._client = client
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)
        self._chain_id: int | None = None
        self._receipts: _ReceiptPoller | None = None

    async def __aenter__(self) -> AsyncRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._receipts is not None:
            self._receipts.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport ---------------------------------------------------------------------------------

    async def _post(self, payload: Any) -> Any:
        if self._client is None:
            return await self._post_aiohttp(payload)
        try:
            response = await self._client.post(self.url, json=payload)
        except _NOT_SENT as exc:
            raise RpcUnavailable(f"cannot reach {self._where}: {safe_repr(exc)}", request_sent=False) from exc
        except httpx.HTTPError as exc:
            raise RpcUnavailable(
                f"RPC request to {self._where} failed: {safe_repr(exc)}", request_sent=True
            ) from exc
        try:
            return response.json()
        except ValueError as exc:
            raise RpcUnavailable(
                f"{self._where} answered HTTP {response.status_code} without JSON", request_sent=True
            ) from exc

    async def _post_aiohttp(self, payload: Any) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
                json_serialize=lambda obj: json.dumps(obj, separators=(",", ":")),
            )
        try:
            async with self._session.post(self.url, json=payload) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientConnectorError as exc:  # no connection: the request never left
            raise RpcUnavailable(f"cannot reach {self._where}: {safe_repr(exc)}", request_sent=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RpcUnavailable(
                f"RPC request to {self._where} failed: {safe_repr(exc)}", request_sent=True
            ) from exc
        try:
            return json.loads(text)
        except ValueError as exc:
            raise RpcUnavailable(
                f"{self._where} answered HTTP {status} without JSON", request_sent=True
            ) from exc

    @property
    def _where(self) -> str:
        """The node as error messages name it: never its key (see studio402.redact)."""
        return redact_url(self.url)

    def _message(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}

    @staticmethod
    def _result(method: str, body: Any) -> Any:
        if not isinstance(body, dict):
            raise RpcError(f"{method}: malformed JSON-RPC response", rpc_code=None, rpc_message=str(body))
        if "error" in body and body["error"] is not None:
            error = body["error"] if isinstance(body["error"], dict) else {"message": str(body["error"])}
            raise error_from_response(method, error)
        if "result" not in body:
            raise RpcError(f"{method}: response without result", rpc_code=None, rpc_message=str(body))
        return body["result"]

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call; the raw `result`. Raises RpcError / ExecutionReverted / RpcUnavailable."""
        return self._result(method, await self._post(self._message(method, params)))

    async def batch(
        self, calls: Sequence[tuple[str, Sequence[Any]]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Several calls in one HTTP request; results in call order. With `return_exceptions`, a failed
        call yields its RpcError in place instead of raising the first one."""
        if not calls:
            return []
        messages = [self._message(method, params) for method, params in calls]
        body = await self._post(messages)
        if not isinstance(body, list):  # a node that rejects batches answers with a single error object
            raise RpcError("batch: node did not answer with a list", rpc_code=None, rpc_message=str(body))
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        out: list[Any] = []
        for message in messages:
            try:
                out.append(self._result(message["method"], by_id.get(message["id"])))
            except RpcError as exc:
                if not return_exceptions:
                    raise
                out.append(exc)
        return out

    # -- reads ---------------------------------------------------------------------------------------

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.request("eth_chainId"), 16)
        return self._chain_id

    async def block_number(self) -> int:
        return int(await self.request("eth_blockNumber"), 16)

    async def get_block(self, block: BlockId = "latest", *, full: bool = False) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.request("eth_getBlockByNumber", [_block_id(block), full])
        return result

    async def get_balance(self, address: str, block: BlockId = "latest") -> int:
        return int(await self.request("eth_getBalance", [address, _block_id(block)]), 16)

    async def get_code(self, address: str, block: BlockId = "latest") -> bytes:
        return _hex_bytes(await self.request("eth_getCode", [address, _block_id(block)]))

    async def get_transaction_count(self, address: str, block: BlockId = "pending") -> int:
        return int(await self.request("eth_getTransactionCount", [address, _block_id(block)]), 16)

    async def gas_price(self) -> int:
        return int(await self.request("eth_gasPrice"), 16)

    async def get_logs(self, filter_: dict[str, Any]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("eth_getLogs", [filter_])
        return result

    @staticmethod
    def _tx_object(to: str | None, data: bytes, from_: str | None, value: int) -> dict[str, Any]:
        tx: dict[str, Any] = {"data": "0x" + data.hex()}
        if to is not None:
            tx["to"] = to
        if from_ is not None:
            tx["from"] = from_
        if value:
            tx["value"] = hex(value)
        return tx

    async def call(
        self, to: str, data: bytes, *, from_: str | None = None, block: BlockId = "latest"
    ) -> bytes:
        """eth_call; the return data. A revert raises ExecutionReverted with the decoded reason."""
        tx = self._tx_object(to, data, from_, 0)
        return _hex_bytes(await self.request("eth_call", [tx, _block_id(block)]))

    async def estimate_gas(
        self, to: str | None, data: bytes, *, from_: str | None = None, value: int = 0
    ) -> int:
        return int(await self.request("eth_estimateGas", [self._tx_object(to, data, from_, value)]), 16)

    # -- transactions ----------------------------------------------------------------------------------

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast a signed transaction; its hash. RpcUnavailable(request_sent=True) means: maybe sent."""
        return str(await self.request("eth_sendRawTransaction", ["0x" + raw.hex()]))

    async def send_raw_transaction_sync(self, raw: bytes) -> dict[str, Any]:
        """EIP-7966: broadcast and get the receipt in one call (anvil and some nodes). RpcError with
        code -32601 when the node lacks the method (nothing was broadcast then)."""
        result: dict[str, Any] = await self.request("eth_sendRawTransactionSync", ["0x" + raw.hex()])
        return result

    async def get_transaction(self, tx_hash: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.request("eth_getTransactionByHash", [tx_hash])
        return result

    async def get_transaction_receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self.request("eth_getTransactionReceipt", [tx_hash])
        return result

    async def wait_for_receipt(self, tx_hash: str, *, timeout: float, poll: float = 0.005) -> dict[str, Any]:
        """Wait until the receipt exists (it may say status 0x0: reverted). Transient RPC failures are
        retried; ReceiptTimeout means the outcome is unknown, not that the transaction failed.
        Concurrent waits share one polling loop that asks for all pending receipts in one batch."""
        if self._receipts is None:
            self._receipts = _ReceiptPoller(self)
        return await self._receipts.wait(tx_hash, timeout=timeout, poll=poll)


class _ReceiptPoller:
    """Polls receipts for every waiter of one AsyncRpc: one batch request per tick instead of one request
    per transaction, which matters when many settlements are in flight."""

    _BATCH = 100
    _MAX_DELAY = 0.25

    def __init__(self, rpc: AsyncRpc) -> None:
        self._rpc = rpc
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._poll = 0.005

    async def wait(self, tx_hash: str, *, timeout: float, poll: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiters.setdefault(tx_hash, []).append(future)
        self._poll = poll
        self._wake.set()  # a fresh transaction: poll soon, not after a backed-off delay
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="rpc-receipts")
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ReceiptTimeout(f"no receipt for {tx_hash} after {timeout:g} s", tx_hash=tx_hash) from None
        finally:
            waiting = self._waiters.get(tx_hash, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiters.pop(tx_hash, None)

    async def _run(self) -> None:
        delay = self._poll
        while self._waiters:
            self._wake.clear()
            found = await self._tick(list(self._waiters))
            delay = self._poll if found else min(delay * 1.5, max(self._poll, self._MAX_DELAY))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
                delay = self._poll

    async def _tick(self, hashes: list[str]) -> bool:
        found = False
        for start in range(0, len(hashes), self._BATCH):
            chunk = hashes[start : start + self._BATCH]
            try:
                results = await self._rpc.batch(
                    [("eth_getTransactionReceipt", [h]) for h in chunk], return_exceptions=True
                )
            except ChainError:
                continue  # node unreachable for now: each waiter's own timeout decides
            for tx_hash, receipt in zip(chunk, results, strict=True):
                if isinstance(receipt, dict):
                    found = True
                    for future in self._waiters.pop(tx_hash, []):
                        if not future.done():
                            future.set_result(receipt)
        return found

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def receipt_succeeded(receipt: dict[str, Any]) -> bool:
    return int(str(receipt.get("status", "0x0")), 16) == 1
