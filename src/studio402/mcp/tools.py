"""What the MCP tools do, over one AsyncStudio. Two ways to pay:

- `Mode.WALLET`: the server's own wallet pays (within its spend limits), waits for the job and returns the
  media: for agents without a wallet.
- `Mode.X402`: the x402 MCP transport. An unpaid generate call answers with the route's PaymentRequired as
  an error result; the agent signs it with its own wallet and calls again with the payment in
  `_meta["x402/payment"]`, which is forwarded to the route unchanged (the job is the agent's). The job is
  then read with the agent's own SIGN-IN-WITH-X proof for the job URL, sent in `_meta["sign-in-with-x"]`
  (job_status and download answer with the challenge to sign when it is missing).
"""

from __future__ import annotations

import base64
import enum
import json
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult

from studio402.mcp import results
from studio402.sdk import AsyncStudio, Job, PaymentFailed, SignInRequired, StudioError

PAYMENT_META = "x402/payment"
PAYMENT_RESPONSE_META = "x402/payment-response"
SIGN_IN_META = "sign-in-with-x"


class Mode(enum.StrEnum):
    WALLET = "wallet"
    X402 = "x402"


class StudioTools:
    def __init__(self, studio: AsyncStudio, mode: Mode, out_dir: Path, *, timeout: float = 900) -> None:
        if mode is Mode.WALLET and studio.wallet is None:
            raise StudioError("wallet mode needs a wallet key", code="no_wallet")
        self.studio = studio
        self.mode = mode
        self.out_dir = out_dir
        self.timeout = timeout

    async def list_models(self) -> CallToolResult:
        try:
            routes = await self.studio.models()
        except StudioError as exc:
            return results.error(exc)
        rows = [
            {"model": r.model, "operation": r.operation, "kind": r.kind, "summary": r.summary,
             "minUsd": r.min_usd, "maxUsd": r.max_usd}
            for r in routes
        ]  # fmt: skip
        return results.ok({"models": rows})

    async def quote(self, model: str, operation: str, body: dict[str, Any]) -> CallToolResult:
        try:
            priced = await self.studio.quote(model, operation, body)
        except StudioError as exc:
            return results.error(exc)
        return results.ok({"usd": priced.price.usd, "rule": priced.rule, "request": priced.request})

    async def generate(
        self, model: str, operation: str, body: dict[str, Any], *, wait: bool, meta: dict[str, Any]
    ) -> CallToolResult:
        try:
            if self.mode is Mode.X402:
                return await self._generate_x402(model, operation, body, meta)
            done = await self.studio.generate(
                model, operation, body, wait=wait, out_dir=self.out_dir, timeout=self.timeout
            )
        except StudioError as exc:
            return results.error(exc)
        data = {**done.to_json(), "spentUsd": _usd(self.studio.spending.spent)}
        return results.ok(data, media=done.files, meta={PAYMENT_RESPONSE_META: done.payment})

    async def _generate_x402(
        self, model: str, operation: str, body: dict[str, Any], meta: dict[str, Any]
    ) -> CallToolResult:
        path = f"/api/generate/{model}/{operation}"
        payment = meta.get(PAYMENT_META)
        if payment is None:
            return results.payment_required(await self.studio.payment_required(path, body))
        header = base64.b64encode(json.dumps(_without_nones(payment)).encode()).decode()
        try:
            created, receipt = await self.studio.pay_with(path, body, header)
        except PaymentFailed as exc:  # a refused payment: the 402 again, with the reason
            required = await self.studio.payment_required(path, body)
            return results.payment_required({**required, "error": exc.code})
        job_id = str(created["jobId"])
        data: dict[str, Any] = {"jobId": job_id, "status": created.get("status"), "payment": receipt}
        try:
            await self.studio.job(job_id, sign_in=meta.get(SIGN_IN_META) or "")
        except SignInRequired as needed:
            data["signIn"] = needed.payment_required
            data["next"] = (
                f"sign in as the payer for {needed.url} and call download with _meta[{SIGN_IN_META!r}]"
            )
        return results.ok(data, meta={PAYMENT_RESPONSE_META: receipt})

    async def job_status(self, job_id: str, meta: dict[str, Any]) -> CallToolResult:
        try:
            job = await self.studio.job(job_id, sign_in=self._sign_in(meta))
        except SignInRequired as needed:
            return results.payment_required(needed.payment_required)
        except StudioError as exc:
            return results.error(exc)
        return results.ok(job.raw)

    async def download(self, job_id: str, meta: dict[str, Any], *, wait: bool = True) -> CallToolResult:
        """The job's files (waiting for it to end first with `wait`), saved and returned as media."""
        sign_in = self._sign_in(meta)
        try:
            job = await self._job(job_id, sign_in, wait)
            files = await self.studio.download(job, self.out_dir, sign_in=sign_in) if job.urls else []
        except SignInRequired as needed:
            return results.payment_required(needed.payment_required)
        except StudioError as exc:
            return results.error(exc)
        data = {"jobId": job.job_id, "status": job.status.value, "files": [str(p) for p in files],
                "urls": job.urls, "error": job.error}  # fmt: skip
        return results.ok(data, media=files)

    async def _job(self, job_id: str, sign_in: str | None, wait: bool) -> Job:
        if wait:
            return await self.studio.wait(job_id, timeout=self.timeout, sign_in=sign_in)
        return await self.studio.job(job_id, sign_in=sign_in)

    def _sign_in(self, meta: dict[str, Any]) -> str | None:
        """The agent's proof in x402 mode ("" when missing: ask for one); ours in wallet mode."""
        if self.mode is Mode.WALLET:
            return None
        value = meta.get(SIGN_IN_META)
        return value if isinstance(value, str) else ""


def _usd(micros: int) -> str:
    return f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")


def _without_nones(value: Any) -> Any:
    """A payment payload as clients send it: pydantic dumps of optional fields (None) dropped."""
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value
