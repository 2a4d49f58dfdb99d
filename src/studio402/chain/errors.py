"""Errors of the chain layer, all under `studio402.errors.ChainError`.

    ChainError
     ├── RpcUnavailable          transport failure; `request_sent` says whether the node may have seen it
     ├── RpcError                the node answered with a JSON-RPC error (`rpc_code`, `rpc_message`, `data`)
     │    └── ExecutionReverted    a call / estimate / send reverted; `reason` is the decoded revert string
     └── OutcomeUnknown          a transaction may be on its way: settle as "pending", never as "failed"
          ├── BroadcastUncertain   the broadcast request failed after it may have reached the node
          └── ReceiptTimeout       broadcast, but no receipt within the timeout

A wallet call that raises anything other than `OutcomeUnknown` did not broadcast a transaction.
"""

from __future__ import annotations

from typing import Any

from studio402.errors import ChainError


class RpcUnavailable(ChainError):
    code = "rpc_unavailable"
    title = "Blockchain RPC unavailable"

    def __init__(self, detail: str, *, request_sent: bool, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.request_sent = request_sent


class RpcError(ChainError):
    code = "rpc_error"
    title = "Blockchain RPC error"

    def __init__(
        self, detail: str, *, rpc_code: int | None, rpc_message: str, data: Any = None, **extra: Any
    ) -> None:
        super().__init__(detail, **extra)
        self.rpc_code = rpc_code
        self.rpc_message = rpc_message
        self.data = data


class ExecutionReverted(RpcError):
    code = "execution_reverted"
    title = "Transaction reverted"

    def __init__(self, detail: str, *, reason: str, revert_data: bytes, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.reason = reason
        self.revert_data = revert_data


class OutcomeUnknown(ChainError):
    code = "chain_outcome_unknown"
    title = "Transaction outcome not known yet"

    def __init__(self, detail: str, *, tx_hash: str, **extra: Any) -> None:
        super().__init__(detail, tx_hash=tx_hash, **extra)
        self.tx_hash = tx_hash


class BroadcastUncertain(OutcomeUnknown):
    code = "broadcast_uncertain"
    title = "Transaction broadcast may have happened"


class ReceiptTimeout(OutcomeUnknown):
    code = "receipt_timeout"
    title = "No transaction receipt yet"
