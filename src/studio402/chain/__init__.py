"""The chain layer: the embedded devnet (anvil + test USDC), a raw async JSON-RPC client, EIP-3009 token
helpers and the settler wallet. See docs in each module; errors are drawn in `chain/errors.py`."""

from __future__ import annotations

from studio402.chain.anvil import find_anvil
from studio402.chain.devnet import Devnet, DevnetInfo, read_info
from studio402.chain.errors import (
    BroadcastUncertain,
    ExecutionReverted,
    OutcomeUnknown,
    ReceiptTimeout,
    RpcError,
    RpcUnavailable,
)
from studio402.chain.rpc import AsyncRpc, receipt_succeeded
from studio402.chain.token import TransferAuthorization, revert_reason_to_x402
from studio402.chain.wallet import SettlerWallet

__all__ = [
    "AsyncRpc",
    "BroadcastUncertain",
    "Devnet",
    "DevnetInfo",
    "ExecutionReverted",
    "OutcomeUnknown",
    "ReceiptTimeout",
    "RpcError",
    "RpcUnavailable",
    "SettlerWallet",
    "TransferAuthorization",
    "find_anvil",
    "read_info",
    "receipt_succeeded",
    "revert_reason_to_x402",
]
