"""A fault-injecting JSON-RPC proxy in front of the devnet, for tests of money paths on unkind nodes.

    async with FaultyRpc(devnet.info.rpc_url) as proxy:      # proxy.url: http://127.0.0.1:<free port>
        proxy.sync_dialect(Dialect.GETH_TIMEOUT)              # eth_sendRawTransactionSync as geth answers it
        proxy.drop_next_sends(1)                              # accepted (hash answered), never forwarded
        proxy.rate_limit(2)                                   # the next 2 HTTP requests: 429
        proxy.rate_limit_method("eth_getTransactionReceipt", 3)
        proxy.outage(True)                                    # connections refused (the request never leaves)
        proxy.before_send(lambda raw: frontrun(devnet, raw))  # a bystander lands the same calldata first
        proxy.fail_method("eth_call", {"code": -32000, "message": "header not found"})

Any path and query are accepted (RPC URLs carry provider keys there) and ignored. Each JSON-RPC message of a
batch is forwarded on its own and faults apply per message, except HTTP-level ones (rate limit, outage, a
lost answer), which hit the whole HTTP request. `calls` lists every method received, `sends` every raw
transaction received by a send method, in order.

Raw asyncio, not a web framework: an outage closes the listening socket at once, so that a client sees
"connection refused" and knows its request never left. Every answer says `Connection: close`: a pooled
keep-alive connection would let a client write its request into a socket the outage just closed, and it
could then no longer tell whether the node saw it.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import rlp
from eth_account import Account
from eth_utils.crypto import keccak

from studio402.chain.devnet import Devnet
from studio402.chain.rpc import receipt_succeeded
from studio402.chain.token import (
    TransferAuthorization,
    cancel_authorization_digest,
    decode_bool,
    eip712_domain_separator,
    encode_authorization_state,
    encode_cancel_authorization,
    sign_digest,
    to_checksum_address,
)
from tests.devnet_fixture import bystander

HOST = "127.0.0.1"
SEND_RAW = "eth_sendRawTransaction"
SEND_RAW_SYNC = "eth_sendRawTransactionSync"
TRANSFER_WITH_AUTHORIZATION = keccak(
    text="transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)[:4]
_TX_TIMEOUT = 30.0

SendHook = Callable[[bytes], Awaitable[object]]
Message = dict[str, Any]


class Dialect(StrEnum):
    """How the node answers eth_sendRawTransactionSync."""

    ANVIL = "anvil"  # forwarded as is: the receipt once mined
    GETH_TIMEOUT = "geth_timeout"  # pooled, then code 4 "…wasn't processed in 2s" (data: the tx hash)
    RETH_TIMEOUT = "reth_timeout"  # pooled, then code 4 "transaction 0x… …wasn't confirmed within 2s"
    NO_SYNC = "no_sync"  # -32601: no such method, nothing sent


class _LostAnswer(Exception):
    """The request reached the node but its answer never comes back: the connection is dropped."""


def _error(message: Any, code: int, text: str, data: Any = None) -> Message:
    error: dict[str, Any] = {"code": code, "message": text}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": _id_of(message), "error": error}


def _id_of(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else None


def _raw_param(message: Message) -> bytes | None:
    params = message.get("params")
    if not isinstance(params, list) or not params or not isinstance(params[0], str):
        return None
    try:
        return bytes.fromhex(params[0].removeprefix("0x"))
    except ValueError:
        return None


def _listening_socket(port: int) -> socket.socket:
    """Bound and listening at once: a client connecting right after an outage ends is queued, not refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The body of one HTTP/1.1 request with a Content-Length (what aiohttp and httpx send); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        return await reader.readexactly(int(headers.get("content-length", "0")))
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        return None


def _http_response(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    reason = {200: "OK", 429: "Too Many Requests", 502: "Bad Gateway"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class FaultyRpc:
    """The proxy; an async context manager. Configure faults from the event loop that runs it."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self.calls: list[str] = []
        self.sends: list[bytes] = []
        self.errors: list[BaseException] = []  # of hooks and of the proxy itself; raised when it closes
        self._port = 0
        self._server: asyncio.Server | None = None
        self._restart: asyncio.Task[None] | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._upstream: aiohttp.ClientSession | None = None
        self._dialect = Dialect.ANVIL
        self._drops = 0
        self._rate_limited = 0
        self._retry_after = 1
        self._method_limits: dict[str, int] = {}
        self._failures: dict[str, list[Message | Exception]] = {}
        self._hook: SendHook | None = None
        self._hooked: set[str] = set()
        self._down = False

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("FaultyRpc not started")
        return f"http://{HOST}:{self._port}"

    async def __aenter__(self) -> FaultyRpc:
        sock = _listening_socket(0)
        self._port = int(sock.getsockname()[1])
        self._upstream = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        await self._serve(sock)
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if self._restart is not None:
            await self._restart
        self._stop_listening()
        if self._upstream is not None:
            await self._upstream.close()
        if exc_type is None and self.errors:
            raise AssertionError(f"FaultyRpc: {self.errors[0]!r}") from self.errors[0]

    # -- faults ---------------------------------------------------------------------------------------------

    def sync_dialect(self, dialect: Dialect) -> None:
        self._dialect = dialect

    def drop_next_sends(self, n: int) -> None:
        """The next `n` sends are answered as accepted (the tx hash; for the sync method, the dialect's "not
        processed in time" error) but never forwarded: a node that loses them. 0 ends it."""
        self._drops = n

    def rate_limit(self, n: int, *, retry_after: int = 1) -> None:
        """The next `n` HTTP requests get 429 + Retry-After and a JSON-RPC error -32005."""
        self._rate_limited = n
        self._retry_after = retry_after

    def rate_limit_method(self, method: str, n: int) -> None:
        """The next `n` HTTP requests carrying `method` get the 429 (a whole batch with it too)."""
        self._method_limits[method] = n

    def outage(self, on: bool) -> None:
        """While on, connections are refused (clients know nothing was sent); requests in flight lose
        their answers (the node may have seen them)."""
        if on == self._down:
            return
        self._down = on
        if on:
            self._stop_listening()
        else:
            sock = _listening_socket(self._port)
            self._restart = asyncio.get_running_loop().create_task(self._serve(sock))

    def before_send(self, hook: SendHook | None) -> None:
        """`hook(raw)` runs before a signed transaction is forwarded for the first time (send or sync send;
        a re-send of the same bytes does not run it again). A failing hook does not stop the forwarding; its
        error is raised when the proxy closes."""
        self._hook = hook
        self._hooked.clear()

    def fail_method(self, method: str, error: Message | Exception, times: int = 1) -> None:
        """The next `times` calls of `method` fail. A dict is answered as the JSON-RPC error object, without
        forwarding. An exception means a lost answer: the call is forwarded (it takes effect) and the
        connection then closes without an answer."""
        self._failures.setdefault(method, []).extend([error] * times)

    # -- serving --------------------------------------------------------------------------------------------

    async def _serve(self, sock: socket.socket) -> None:
        if self._down:  # the outage began again before this restart ran
            sock.close()
            return
        self._server = await asyncio.start_server(self._connection, sock=sock)

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()  # closes the listening socket now
            self._server = None
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            request = await _read_request(reader)
            if request is None or self._down:
                return
            try:
                status, body, headers = await self._answer_http(request)
            except _LostAnswer:
                writer.transport.abort()
                return
            except Exception as exc:  # a bug of the proxy: fails the test when the proxy closes
                self.errors.append(exc)
                writer.transport.abort()
                return
            if self._down:  # the outage began while the node was answering: the answer is lost
                return
            writer.write(_http_response(status, body, headers))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _answer_http(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        try:
            request = json.loads(body)
        except ValueError:
            return 200, json.dumps(_error(None, -32700, "parse error")).encode(), {}
        batch = isinstance(request, list)
        messages: list[Any] = request if batch else [request]
        methods = [str(m.get("method")) if isinstance(m, dict) else "" for m in messages]
        self.calls.extend(methods)
        if self._take_rate_limit(methods):
            limited = _error(None if batch else request, -32005, "rate limited")
            return 429, json.dumps(limited).encode(), {"Retry-After": str(self._retry_after)}
        answers = await asyncio.gather(*(self._answer(m) for m in messages), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, _LostAnswer):
                raise answer
            if isinstance(answer, aiohttp.ClientError | TimeoutError | ValueError):
                return 502, b"upstream unreachable", {}  # as a gateway answers: HTTP error, no JSON
            if isinstance(answer, BaseException):
                raise answer
        return 200, json.dumps(answers if batch else answers[0]).encode(), {}

    def _take_rate_limit(self, methods: list[str]) -> bool:
        if self._rate_limited > 0:
            self._rate_limited -= 1
            return True
        limited = {m for m in methods if self._method_limits.get(m, 0) > 0}
        for method in limited:
            self._method_limits[method] -= 1
        return bool(limited)

    async def _answer(self, message: Any) -> Message:
        if not isinstance(message, dict):
            return _error(message, -32600, "invalid request")
        method = str(message.get("method"))
        failures = self._failures.get(method)
        failure = failures.pop(0) if failures else None
        if isinstance(failure, dict):
            return {"jsonrpc": "2.0", "id": message.get("id"), "error": failure}
        answer = await (
            self._send(message, method) if method in (SEND_RAW, SEND_RAW_SYNC) else self._forward(message)
        )
        if failure is not None:
            raise _LostAnswer(method) from failure
        return answer

    async def _forward(self, message: Message) -> Message:
        assert self._upstream is not None
        async with self._upstream.post(self.upstream_url, json=message) as response:
            answer: Message = await response.json(content_type=None)
        return answer

    async def _send(self, message: Message, method: str) -> Message:
        raw = _raw_param(message)
        if raw is None:
            return await self._forward(message)
        tx_hash = "0x" + keccak(raw).hex()
        self.sends.append(raw)
        sync = method == SEND_RAW_SYNC
        if sync and self._dialect is Dialect.NO_SYNC:
            return _error(message, -32601, f"the method {SEND_RAW_SYNC} does not exist/is not available")
        if self._drops > 0:
            self._drops -= 1
            if sync:
                return _error(message, *self._not_processed(tx_hash))
            return {"jsonrpc": "2.0", "id": message.get("id"), "result": tx_hash}
        await self._run_hook(raw, tx_hash)
        if not sync or self._dialect is Dialect.ANVIL:
            return await self._forward(message)
        answer = await self._forward({**message, "method": SEND_RAW})
        if "error" in answer:
            return answer  # refused before the pool: geth and reth say so as eth_sendRawTransaction does
        return _error(message, *self._not_processed(tx_hash))

    def _not_processed(self, tx_hash: str) -> tuple[int, str, str | None]:
        """The "pooled, but no receipt in time" error of the dialect (anvil's after its own 30 s wait)."""
        if self._dialect is Dialect.RETH_TIMEOUT:
            return (
                4,
                f"transaction {tx_hash} was added to the mempool but wasn't confirmed within 2s",
                tx_hash,
            )
        if self._dialect is Dialect.GETH_TIMEOUT:
            return 4, "the transaction was added to the transaction pool but wasn't processed in 2s", tx_hash
        return -32603, "Transaction confirmation timeout", None

    async def _run_hook(self, raw: bytes, tx_hash: str) -> None:
        if self._hook is None or tx_hash in self._hooked:
            return
        self._hooked.add(tx_hash)
        try:
            await self._hook(raw)
        except Exception as exc:  # reported when the proxy closes; the send goes on as without the hook
            self.errors.append(exc)


# -- transactions seen by the proxy -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedTx:
    nonce: int
    to: str | None  # None: a contract creation
    data: bytes
    tx_hash: str


def decode_raw_tx(raw: bytes) -> DecodedTx:
    """Nonce, recipient and calldata of a raw signed transaction (legacy, EIP-2930 or EIP-1559)."""
    if raw[:1] in (b"\x01", b"\x02"):
        fields = rlp.decode(raw[1:])
        # type 1: chainId, nonce, gasPrice, gas, to, value, data; type 2 adds a fee field before gas
        nonce, to, data = fields[1], fields[5 if raw[0] == 2 else 4], fields[7 if raw[0] == 2 else 6]
    else:
        fields = rlp.decode(raw)
        nonce, to, data = fields[0], fields[3], fields[5]
    return DecodedTx(
        nonce=int.from_bytes(nonce, "big"),
        to=to_checksum_address("0x" + to.hex()) if to else None,
        data=bytes(data),
        tx_hash="0x" + keccak(raw).hex(),
    )


def transfer_authorization_in(data: bytes) -> TransferAuthorization | None:
    """The authorization a `transferWithAuthorization` calldata carries; None for any other call."""
    if data[:4] != TRANSFER_WITH_AUTHORIZATION or len(data) != 4 + 9 * 32:
        return None
    words = [data[4 + 32 * i : 36 + 32 * i] for i in range(6)]
    return TransferAuthorization(
        from_address=to_checksum_address("0x" + words[0][12:].hex()),
        to=to_checksum_address("0x" + words[1][12:].hex()),
        value=int.from_bytes(words[2], "big"),
        valid_after=int.from_bytes(words[3], "big"),
        valid_before=int.from_bytes(words[4], "big"),
        nonce=words[5],
    )


async def frontrun(devnet: Devnet, raw: bytes) -> str | None:
    """A bystander sends the same `transferWithAuthorization` calldata to the same token and it is mined
    before this returns (so `raw`, sent after, reverts). The bystander's tx hash; None (nothing done) when
    `raw` is no transferWithAuthorization."""
    tx = decode_raw_tx(raw)
    if tx.to is None or transfer_authorization_in(tx.data) is None:
        return None
    wallet = await bystander(devnet)
    receipt = await wallet.send_and_wait(tx.to, tx.data, timeout=_TX_TIMEOUT)
    return str(receipt["transactionHash"])


async def cancel_first(
    devnet: Devnet, payer_key: str, raw: bytes | None, *, nonce: bytes | str | None = None
) -> str | None:
    """The payer's EIP-3009 `cancelAuthorization` of `nonce` (default: the one `raw`'s
    transferWithAuthorization by this payer carries), sent by a bystander and mined before this returns.
    Its tx hash; None (nothing done) when `raw` is not such a transfer or the nonce is already used."""
    info = devnet.info
    payer = str(Account.from_key(payer_key).address)
    if nonce is None:
        auth = transfer_authorization_in(decode_raw_tx(raw).data) if raw is not None else None
        if auth is None or auth.from_address != payer:
            return None
        nonce = auth.nonce
    elif isinstance(nonce, str):
        nonce = bytes.fromhex(nonce.removeprefix("0x"))
    if decode_bool(await devnet.rpc.call(info.token, encode_authorization_state(payer, nonce))):
        return None  # already used or canceled: a cancellation would only revert
    separator = eip712_domain_separator(info.token_name, info.token_version, info.chain_id, info.token)
    signature = sign_digest(cancel_authorization_digest(payer, nonce, separator), payer_key)
    wallet = await bystander(devnet)
    data = encode_cancel_authorization(payer, nonce, signature)
    receipt = await wallet.send_and_wait(info.token, data, timeout=_TX_TIMEOUT)
    if not receipt_succeeded(receipt):
        raise AssertionError(f"cancelAuthorization reverted: {receipt}")
    return str(receipt["transactionHash"])
