"""Settling through a remote x402 facilitator (`/verify`, `/settle`) instead of our own settler wallet: the
`EvmSettlement` port for operators who do not want to hold a gas-paying key.

The facilitator broadcasts, so no transaction hash is known in advance: the payment is recorded as settling
(job created, held) before `/settle` is called, and a lost answer is an unknown outcome. A read-only RPC
(`rpc_url`) lets the reconciler see on chain whether the authorization was used."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from studio402.chain.facts import ChainFactReader
from studio402.chain.rpc import AsyncRpc
from studio402.chain.settlement import quoted_transfer
from studio402.errors import ChainError
from studio402.payments.methods.evm_exact import (
    OnSigned,
    Reason,
    SettleOutcome,
    SettleStatus,
    VerifiedPayment,
)
from studio402.payments.outcome import decide
from studio402.redact import redact_url, safe_repr

_RECEIPT_WAIT = 10.0
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
        self._rpc = rpc
        self._facts = ChainFactReader(rpc, token)

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
            raise ChainError(
                f"facilitator {redact_url(self._url)} /verify failed: {safe_repr(exc)}",
                code="facilitator_unavailable",
            ) from exc
        if verdict.get("isValid"):
            return None
        return str(verdict.get("invalidReason") or Reason.TRANSACTION_FAILED.value)

    async def settle(self, payment: VerifiedPayment, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        await on_signed(None, None)  # record "settling" (and the held job) before anything can move
        try:
            result = await self._post("settle", _request(payment))
        except _NOT_SENT as exc:
            raise ChainError(
                f"facilitator {redact_url(self._url)} unreachable: {safe_repr(exc)}",
                code="facilitator_unavailable",
            ) from exc
        except (httpx.HTTPError, ValueError):
            return SettleOutcome(SettleStatus.UNKNOWN)  # it may have broadcast: the reconciler looks
        tx_hash = str(result.get("transaction") or "") or None
        if result.get("success") and tx_hash:
            with contextlib.suppress(ChainError):  # our read node may lag the facilitator's
                await self._rpc.wait_for_receipt(tx_hash, timeout=min(timeout, _RECEIPT_WAIT))
        # Whatever it answered (success, failure, pending, a reason we do not know), the chain decides
        # whether the payer was charged: a facilitator's word is not a receipt.
        try:
            facts = await self._facts.facts([tx_hash] if tx_hash else [], quoted_transfer(payment))
        except ChainError:
            return SettleOutcome(SettleStatus.UNKNOWN, tx_hash)
        return decide(facts, payment.auth.valid_before)

    async def lookup(
        self, payment: VerifiedPayment, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome:
        facts = await self._facts.facts([tx_hash] if tx_hash else [], quoted_transfer(payment))
        return decide(facts, payment.auth.valid_before)
