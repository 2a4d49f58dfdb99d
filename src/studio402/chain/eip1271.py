"""Smart-wallet signatures for SIGN-IN-WITH-X (EIP-1271): ask the wallet contract whether it signed.
Implements the `Eip1271Checker` port of `studio402.auth`."""

from __future__ import annotations

from collections.abc import Mapping

from eth_abi.abi import encode as abi_encode

from studio402.chain.errors import ExecutionReverted
from studio402.chain.rpc import AsyncRpc

MAGIC_VALUE = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes) selector, returned when valid


class RpcEip1271Checker:
    def __init__(self, rpcs: Mapping[int, AsyncRpc]) -> None:
        self._rpcs = dict(rpcs)

    async def is_valid_signature(
        self, chain_id: int, address: str, message_hash: bytes, signature: bytes
    ) -> bool:
        rpc = self._rpcs.get(chain_id)
        if rpc is None or not await rpc.get_code(address):
            return False  # a chain we do not serve, or not a contract: only EOA signatures count there
        data = MAGIC_VALUE + abi_encode(["bytes32", "bytes"], [message_hash, signature])
        try:
            answer = await rpc.call(address, data)
        except ExecutionReverted:
            return False
        return answer[:4] == MAGIC_VALUE
