"""Settling through a remote x402 facilitator (`/verify`, `/settle`) instead of our own settler wallet: the
`EvmSettlement` port for operators who do not want to hold a gas-paying key.

The facilitator broadcasts, so no transaction hash is known in advance: the payment is recorded as settling
(job created, held) before `/settle` is called, and a lost answer is an unknown outcome. A read-only RPC
(`rpc_url`) lets the reconciler see on chain whether the authorization was used."""

from __future__ import annotations

from typing import Any

import httpx

from studio402.chain.audit import RpcAuditChain
from studio402.chain.rpc import AsyncRpc
from studio402.errors import ChainError
from studio402.payments.methods.evm_exact import (
    OnSigned,
    Reason,
    SettleOutcome,
    SettleStatus,
    VerifiedPayment,
)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _request(payment: VerifiedPayment) -> dict[str, Any]:
    requirements = payment.requirement.to_v2()
    payload = {
        "x402Version": 2,
        "accepted": requirements,
        "payload": {"authorization": payment.auth.to_json(), "signature": "0x" + payment.signature.hex()},
    }
    return {"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements}


class FacilitatorSettlement:
    def __init__(
        self,
        url: str,
        rpc: AsyncRpc,
        *,
        token: str,
        headers: dict[str, str] | None = None,
        timeout: float = 90.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers or {})
        self._chain = RpcAuditChain(rpc, token)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(f"{self._url}/{path}", json=body)
        data: dict[str, Any] = response.json()
        return data

    async def simulate(self, payment: VerifiedPayment) -> str | None:
        try:
            verdict = await self._post("verify", _request(payment))
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainError(f"facilitator /verify failed: {exc!r}", code="facilitator_unavailable") from exc
        if verdict.get("isValid"):
            return None
        return str(verdict.get("invalidReason") or Reason.TRANSACTION_FAILED.value)

    async def settle(self, payment: VerifiedPayment, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        await on_signed(None, None)  # record "settling" (and the held job) before anything can move
        try:
            result = await self._post("settle", _request(payment))
        except _NOT_SENT as exc:
            raise ChainError(f"facilitator unreachable: {exc!r}", code="facilitator_unavailable") from exc
        except (httpx.HTTPError, ValueError):
            return SettleOutcome(SettleStatus.UNKNOWN)  # it may have broadcast: the reconciler looks
        tx_hash = str(result.get("transaction") or "") or None
        if result.get("success"):
            return SettleOutcome(SettleStatus.SETTLED, tx_hash)
        reason = str(result.get("errorReason") or Reason.TRANSACTION_FAILED.value)
        if reason == "settlement_pending":
            return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)
        if tx_hash is None and await self._chain.authorization_used(payment.payer, payment.nonce):
            return SettleOutcome(
                SettleStatus.UNKNOWN
            )  # says failed, yet the chain moved: let the reconciler see
        return SettleOutcome(SettleStatus.REVERTED, tx_hash, reason)

    async def lookup(
        self, payment: VerifiedPayment, tx_hash: str | None, raw_tx: bytes | None, now: float
    ) -> SettleOutcome:
        if await self._chain.authorization_used(payment.payer, payment.nonce):
            return SettleOutcome(
                SettleStatus.SETTLED,
                tx_hash or await self._chain.authorization_tx(payment.payer, payment.nonce),
            )
        if payment.auth.valid_before <= now:
            return SettleOutcome(SettleStatus.REVERTED, tx_hash, Reason.VALID_BEFORE.value)
        return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)
