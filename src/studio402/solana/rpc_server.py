"""A small Solana JSON-RPC endpoint on 127.0.0.1 in front of the LiteSVM devnet.

It answers what the official x402 SVM client (getAccountInfo for the mint, getLatestBlockhash) and our
settler (simulateTransaction, sendTransaction, getSignatureStatuses, isBlockhashValid) call, plus the usual
wallet reads (getBalance, getTokenAccountsByOwner jsonParsed, getTokenAccountBalance,
getMinimumBalanceForRentExemption, getFeeForMessage). Two private methods are the faucet and the clock:
`studio402_fund(owner, atomic)` and `studio402_expireBlockhash()`.
Answers follow Solana's JSON shapes closely enough for solders' strict response parsers."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.hash import Hash
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.token.state import TokenAccount
from solders.transaction import VersionedTransaction

from studio402.chain.state import write_atomic
from studio402.errors import InputError
from studio402.solana.devnet import (
    DECIMALS,
    LAMPORTS_PER_SIGNATURE,
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAM,
    SolanaDevnet,
    TokenBalance,
)

log = logging.getLogger(__name__)

_RENT_EPOCH = 18_446_744_073_709_551_615  # what the cluster reports for rent-exempt accounts
_INVALID_PARAMS = -32602
_METHOD_NOT_FOUND = -32601
_SEND_FAILED = -32002  # the cluster's "Transaction simulation failed" / preflight code
_UNSUPPORTED_VERSION = -32015
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class SolanaRpc:
    """The JSON-RPC methods, as plain functions of the devnet (the HTTP server only transports them)."""

    def __init__(self, devnet: SolanaDevnet) -> None:
        self.devnet = devnet
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "getAccountInfo": self.get_account_info,
            "getBalance": self.get_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenAccountBalance": self.get_token_account_balance,
            "simulateTransaction": self.simulate_transaction,
            "sendTransaction": self.send_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getMinimumBalanceForRentExemption": lambda p: self.devnet.minimum_balance(int(p[0])),
            "getFeeForMessage": self.get_fee_for_message,
            "getSlot": lambda p: self.devnet.slot,
            "getBlockHeight": lambda p: self.devnet.slot,
            "getHealth": lambda p: "ok",
            "getVersion": lambda p: {"solana-core": "2.1.0", "feature-set": 0},
            "studio402_fund": lambda p: self.devnet.fund(str(p[0]), int(p[1])),
            "studio402_expireBlockhash": self.expire_blockhash,
        }

    def handle(self, request: Any) -> dict[str, Any]:
        """One JSON-RPC request object -> its response object."""
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcError(-32600, "Invalid request")
            method = self._methods.get(request["method"])
            if method is None:
                raise RpcError(_METHOD_NOT_FOUND, "Method not found")
            params = request.get("params") or []
            if not isinstance(params, list):
                raise RpcError(_INVALID_PARAMS, "params must be an array")
            return {"jsonrpc": "2.0", "id": rid, "result": method(params)}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": str(exc)}}
        except (InputError, ValueError, IndexError, KeyError, TypeError) as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": _INVALID_PARAMS, "message": str(exc)}}
        except Exception as exc:  # a devnet bug must answer, not drop the connection
            log.exception("solana rpc %s failed", request.get("method"))
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": str(exc)}}

    def _ctx(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.devnet.slot, "apiVersion": "2.1.0"}, "value": value}

    def get_latest_blockhash(self, params: list[Any]) -> dict[str, Any]:
        blockhash, last_valid = self.devnet.latest_blockhash()
        return self._ctx({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def is_blockhash_valid(self, params: list[Any]) -> dict[str, Any]:
        return self._ctx(self.devnet.is_blockhash_valid(Hash.from_string(params[0])))

    def expire_blockhash(self, params: list[Any]) -> str:
        self.devnet.expire_blockhash()
        return str(self.devnet.latest_blockhash()[0])

    def get_account_info(self, params: list[Any]) -> dict[str, Any]:
        address = Pubkey.from_string(params[0])
        encoding = (params[1] if len(params) > 1 else {}).get("encoding", "base64")
        acc = self.devnet.get_account(address)
        if acc is None:
            return self._ctx(None)
        if encoding == "jsonParsed" and acc.owner == TOKEN_PROGRAM and len(acc.data) == TOKEN_ACCOUNT_LEN:
            data: Any = _parsed_token_account(bytes(acc.data))
        else:
            data = [base64.b64encode(bytes(acc.data)).decode(), "base64"]
        return self._ctx(_account_json(acc.lamports, str(acc.owner), acc.executable, data, len(acc.data)))

    def get_balance(self, params: list[Any]) -> dict[str, Any]:
        acc = self.devnet.get_account(Pubkey.from_string(params[0]))
        return self._ctx(0 if acc is None else acc.lamports)

    def get_token_accounts_by_owner(self, params: list[Any]) -> dict[str, Any]:
        owner, selector = Pubkey.from_string(params[0]), params[1]
        wanted_mint = selector.get("mint")
        if wanted_mint is None and selector.get("programId") != str(TOKEN_PROGRAM):
            return self._ctx([])
        if wanted_mint is not None and wanted_mint != str(self.devnet.mint.pubkey()):
            return self._ctx([])
        parsed = (params[2] if len(params) > 2 else {}).get("encoding") == "jsonParsed"
        out = []
        for ata, acc in self.devnet.token_accounts_of(owner):
            raw = bytes(acc.data)
            data = _parsed_token_account(raw) if parsed else [base64.b64encode(raw).decode(), "base64"]
            account = _account_json(acc.lamports, str(acc.owner), False, data, len(raw))
            out.append({"pubkey": str(ata), "account": account})
        return self._ctx(out)

    def get_token_account_balance(self, params: list[Any]) -> dict[str, Any]:
        acc = self.devnet.get_account(Pubkey.from_string(params[0]))
        if acc is None or acc.owner != TOKEN_PROGRAM or len(acc.data) != TOKEN_ACCOUNT_LEN:
            raise RpcError(_INVALID_PARAMS, "Invalid param: could not find account")
        return self._ctx(_token_amount(TokenAccount.from_bytes(bytes(acc.data)).amount))

    def simulate_transaction(self, params: list[Any]) -> dict[str, Any]:
        tx = _decode_tx(params)
        err, logs, units = self.devnet.simulate(tx)
        value = {
            "err": None if err is None else {"TransactionError": err},
            "logs": logs,
            "accounts": None,
            "unitsConsumed": units,
            "returnData": None,
        }
        return self._ctx(value)

    def send_transaction(self, params: list[Any]) -> str:
        tx = _decode_tx(params)
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        try:
            return self.devnet.send(tx, preflight=not options.get("skipPreflight", False))
        except InputError as exc:
            raise RpcError(_SEND_FAILED, str(exc)) from None

    def get_signature_statuses(self, params: list[Any]) -> dict[str, Any]:
        out: list[dict[str, Any] | None] = []
        for sig in params[0]:
            status = self.devnet.status(sig)
            if status is None:
                out.append(None)
                continue
            err = None if status.err is None else {"TransactionError": status.err}
            out.append(
                {
                    "slot": status.slot,
                    "confirmations": None,
                    "err": err,
                    "status": {"Ok": None} if err is None else {"Err": err},
                    "confirmationStatus": "finalized",
                }
            )
        return self._ctx(out)

    def get_transaction(self, params: list[Any]) -> dict[str, Any] | None:
        """A landed transaction with its `meta`, as the cluster answers `json` / `jsonParsed` (instructions
        stay partially decoded: programId, accounts, base58 data)."""
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        if options.get("encoding", "json") not in ("json", "jsonParsed"):
            raise RpcError(_INVALID_PARAMS, "only json and jsonParsed encodings are served")
        found = self.devnet.transaction(str(params[0]))
        if found is None:
            return None
        status, record = found
        tx = VersionedTransaction.from_bytes(record.raw)
        versioned = isinstance(tx.message, MessageV0)
        if versioned and options.get("maxSupportedTransactionVersion") is None:  # as the cluster refuses
            raise RpcError(
                _UNSUPPORTED_VERSION,
                "Transaction version (0) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        err = None if status.err is None else {"TransactionError": status.err}
        mint = str(self.devnet.mint.pubkey())
        meta: dict[str, Any] = {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": record.fee,
            "preBalances": record.pre_lamports,
            "postBalances": record.post_lamports,
            "innerInstructions": [],
            "logMessages": record.logs,
            "preTokenBalances": [_token_balance(b, mint) for b in record.pre_tokens],
            "postTokenBalances": [_token_balance(b, mint) for b in record.post_tokens],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
        }
        return {
            "slot": status.slot,
            "blockTime": None,
            "version": 0 if versioned else "legacy",
            "transaction": _transaction_json(tx, parsed=options.get("encoding") == "jsonParsed"),
            "meta": meta,
        }

    def get_fee_for_message(self, params: list[Any]) -> dict[str, Any]:
        raw = base64.b64decode(params[0])
        if raw and raw[0] & 0x80:  # a versioned message: its header follows the version byte
            signers = MessageV0.from_bytes(raw[1:]).header.num_required_signatures
        else:  # a legacy message starts with its header
            signers = raw[0]
        return self._ctx(signers * LAMPORTS_PER_SIGNATURE)


def _decode_tx(params: list[Any]) -> VersionedTransaction:
    options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    if options.get("encoding", "base58") != "base64":
        raise RpcError(_INVALID_PARAMS, "only base64-encoded transactions are served")
    return VersionedTransaction.from_bytes(base64.b64decode(params[0]))


def _b58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _transaction_json(tx: VersionedTransaction, *, parsed: bool) -> dict[str, Any]:
    message = tx.message
    keys = [str(k) for k in message.account_keys]
    header = message.header
    signers = header.num_required_signatures
    readonly_signed = header.num_readonly_signed_accounts
    readonly_unsigned = header.num_readonly_unsigned_accounts

    def writable(i: int) -> bool:
        if i < signers:
            return i < signers - readonly_signed
        return i < len(keys) - readonly_unsigned

    out: dict[str, Any] = {"recentBlockhash": str(message.recent_blockhash), "addressTableLookups": []}
    if parsed:  # keys with their roles; instructions of programs it cannot parse: ids and base58 data
        out["accountKeys"] = [
            {"pubkey": k, "signer": i < signers, "writable": writable(i), "source": "transaction"}
            for i, k in enumerate(keys)
        ]
        out["instructions"] = [
            {
                "programId": keys[ix.program_id_index],
                "accounts": [keys[a] for a in bytes(ix.accounts)],
                "data": _b58(bytes(ix.data)),
                "stackHeight": None,
            }
            for ix in message.instructions
        ]
    else:
        out["accountKeys"] = keys
        out["header"] = {
            "numRequiredSignatures": signers,
            "numReadonlySignedAccounts": readonly_signed,
            "numReadonlyUnsignedAccounts": readonly_unsigned,
        }
        out["instructions"] = [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(bytes(ix.accounts)),
                "data": _b58(bytes(ix.data)),
                "stackHeight": None,
            }
            for ix in message.instructions
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": out}


def _token_balance(b: TokenBalance, mint: str) -> dict[str, Any]:
    return {
        "accountIndex": b.account_index,
        "mint": mint,
        "owner": b.owner,
        "programId": str(TOKEN_PROGRAM),
        "uiTokenAmount": _token_amount(b.amount),
    }


def _account_json(lamports: int, owner: str, executable: bool, data: Any, space: int) -> dict[str, Any]:
    return {
        "data": data,
        "executable": executable,
        "lamports": lamports,
        "owner": owner,
        "rentEpoch": _RENT_EPOCH,
        "space": space,
    }


def _token_amount(amount: int) -> dict[str, Any]:
    whole, frac = divmod(amount, 10**DECIMALS)
    text = f"{whole}.{frac:0{DECIMALS}d}".rstrip("0").rstrip(".")  # exact, as the cluster prints it
    return {"amount": str(amount), "decimals": DECIMALS, "uiAmount": float(text), "uiAmountString": text}


def _parsed_token_account(raw: bytes) -> dict[str, Any]:
    token = TokenAccount.from_bytes(raw)
    info = {
        "isNative": False,
        "mint": str(token.mint),
        "owner": str(token.owner),
        "state": "initialized",
        "tokenAmount": _token_amount(token.amount),
    }
    return {"program": "spl-token", "parsed": {"info": info, "type": "account"}, "space": len(raw)}


class SolanaRpcServer:
    """Serves a devnet's JSON-RPC on 127.0.0.1 from a background thread (the official clients are sync)."""

    def __init__(self, devnet: SolanaDevnet, port: int = 0) -> None:
        rpc = SolanaRpc(devnet)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length))
                except ValueError:
                    request = None
                if isinstance(request, list):
                    body: Any = [rpc.handle(r) for r in request]
                else:
                    body = rpc.handle(request)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("solana rpc: " + format, *args)

        self.devnet = devnet
        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="solana-rpc", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SolanaRpcServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
        self.devnet.save()


def main(argv: list[str] | None = None) -> None:
    """`python -m studio402.solana.rpc_server --data-dir D`: serve D's devnet until SIGTERM (process.py)."""
    import argparse
    import os
    import signal
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = SolanaRpcServer(SolanaDevnet(args.data_dir), args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Announced only once it answers: whoever waits for this file may call it at once.
    pid_file = args.data_dir / "devnet" / "solana.pid"
    write_atomic(pid_file, json.dumps({"pid": os.getpid(), "url": server.url}).encode())
    stop.wait()
    server.stop()
    if json.loads(pid_file.read_text()).get("pid") == os.getpid():
        pid_file.unlink()


if __name__ == "__main__":
    main()
