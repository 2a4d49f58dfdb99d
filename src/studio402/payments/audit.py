"""`studio402 ledger audit`: does the ledger balance, and does the chain agree with it?

    settled (on chain) = delivered + refunded + in flight + retained
    every settled payment has its Transfer(payer -> payTo, amount) on chain, in its transaction;
    every sent refund has its Transfer(refund wallet -> payer, amount) on chain;
    no failed payment's authorization was ever used on chain (failed means not charged).
`retained` is money kept for jobs that failed with refund policy `none` or were canceled after starting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from studio402.money import account_key
from studio402.payments.ledger import CREDIT_NETWORK, PaymentRecord, PaymentState
from studio402.payments.refunds import RefundRecord, RefundState

IN_FLIGHT_JOB_STATES = frozenset({"pending", "loading"})


class AuditChain(Protocol):
    async def transfers(self, tx_hash: str) -> list[tuple[str, str, int]]:
        """(sender, receiver, value) of every token Transfer in a transaction (lowercase addresses)."""
        ...

    async def paid_with_authorization(self, payer: str, nonce: str, pay_to: str, amount: int) -> str | None:
        """The transaction (anyone's) that used this authorization for exactly this transfer, if any."""
        ...


@dataclass
class NetworkTotals:
    settled: int = 0
    delivered: int = 0
    refunded: int = 0
    in_flight: int = 0
    retained: int = 0

    @property
    def balanced(self) -> bool:
        return self.settled == self.delivered + self.refunded + self.in_flight + self.retained


@dataclass
class AuditReport:
    totals: dict[str, NetworkTotals] = field(default_factory=dict)  # key: "network asset"
    credit_spent_micros: int = 0
    credit_refunded_micros: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.balanced for t in self.totals.values())


def _bucket(job_status: str | None, refund: RefundRecord | None) -> str:
    if refund is not None:
        return "refunded" if refund.state is RefundState.DONE else "in_flight"
    if job_status is None or job_status in IN_FLIGHT_JOB_STATES:
        return "in_flight"
    return "delivered" if job_status == "complete" else "retained"


async def audit(
    payments: Sequence[PaymentRecord],
    job_status: Mapping[str, str],
    refunds: Sequence[RefundRecord],
    chains: Mapping[str, AuditChain],
    refund_wallets: Mapping[str, str],
) -> AuditReport:
    report = AuditReport()
    by_job = {r.job_id: r for r in refunds}
    for p in payments:
        if p.key.network == CREDIT_NETWORK:
            if p.state is PaymentState.SETTLED:
                report.credit_spent_micros += p.micros
            continue
        chain = chains.get(p.key.network)
        if p.state is PaymentState.SETTLED:
            await _settled(report, p, job_status, by_job, chain)
        elif p.state is PaymentState.FAILED and chain is not None and p.pay_to and p.amount is not None:
            tx = await chain.paid_with_authorization(p.key.payer, p.key.nonce, p.pay_to, p.amount)
            if tx is not None:
                report.problems.append(f"payment {p.id} is marked failed but {tx} paid it on chain")
    for r in refunds:
        if r.method.value == "credit":
            report.credit_refunded_micros += r.micros
        elif r.state is RefundState.DONE:
            await _refund_on_chain(
                report, r, chains.get(r.network or ""), refund_wallets.get(r.network or "")
            )
    return report


async def _settled(
    report: AuditReport,
    p: PaymentRecord,
    job_status: Mapping[str, str],
    by_job: Mapping[str, RefundRecord],
    chain: AuditChain | None,
) -> None:
    amount = p.amount or 0
    totals = report.totals.setdefault(f"{p.key.network} {p.asset}", NetworkTotals())
    totals.settled += amount
    refund = by_job.get(p.job_id or "")
    bucket = _bucket(job_status.get(p.job_id or ""), refund)
    setattr(totals, bucket, getattr(totals, bucket) + amount)
    if p.job_id is None or p.job_id not in job_status:
        report.problems.append(f"settled payment {p.id} has no job")
    if chain is None:
        report.problems.append(f"no RPC to check {p.key.network}")
        return
    if p.tx_hash is None:
        report.problems.append(f"settled payment {p.id} has no transaction hash")
        return
    wanted = (p.key.payer, account_key(p.pay_to or ""), amount)
    if wanted not in await chain.transfers(p.tx_hash):
        report.problems.append(f"payment {p.id}: no Transfer {wanted} in {p.tx_hash}")


async def _refund_on_chain(
    report: AuditReport, r: RefundRecord, chain: AuditChain | None, wallet: str | None
) -> None:
    if chain is None or wallet is None or r.tx_hash is None:
        report.problems.append(f"refund {r.id} cannot be checked on chain")
        return
    wanted = (account_key(wallet), r.payer, r.amount or 0)
    if wanted not in await chain.transfers(r.tx_hash):
        report.problems.append(f"refund {r.id}: no Transfer {wanted} in {r.tx_hash}")
