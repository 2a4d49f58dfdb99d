"""What a paid request answers (the job it created or an earlier identical request created), and the job a
new payment creates. Values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio402.catalog import Kind, ValidatedRequest
from studio402.money import account_key
from studio402.payments.ledger import NewJob, new_id, new_webhook_secret


@dataclass(frozen=True, slots=True)
class Paid:
    """A paid request: the job it created (now or on an earlier identical request)."""

    job_id: str
    payer: str
    network: str
    tx_hash: str | None
    settled: bool  # False: the settlement is still pending (the job waits for it)
    replay: bool = False
    # The new job's webhook secret: only on the answer that created the job, never on a replay.
    webhook_secret: str | None = None

    def settle_response(self) -> dict[str, Any]:
        """The x402 SettleResponse sent in PAYMENT-RESPONSE."""
        return {
            "success": True,
            "transaction": self.tx_hash or "",
            "network": self.network,
            "payer": self.payer,
        }


def fresh(job: NewJob, network: str, tx_hash: str | None, *, settled: bool) -> Paid:
    """The answer for a job this request created (the only answer that shows its webhook secret)."""
    return Paid(job.id, job.payer, network, tx_hash, settled=settled, webhook_secret=job.webhook_secret)


def new_job(request: ValidatedRequest, payer: str, micros: int) -> NewJob:
    callback = request.canonical.get("callBackUrl")
    delivered_at_once = request.route.kind is Kind.UPLOAD  # a paid upload slot needs no worker
    return NewJob(
        id=new_id("job"),
        payer=account_key(payer),
        model=request.route.model,
        operation=request.route.operation,
        request=request.canonical_json,
        fingerprint=request.fingerprint,
        micros=micros,
        callback_url=callback if isinstance(callback, str) else None,
        webhook_secret=new_webhook_secret() if isinstance(callback, str) else None,
        status="complete" if delivered_at_once else "pending",
        result='{"upload": true}' if delivered_at_once else None,
    )
