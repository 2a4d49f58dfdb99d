"""Ports of the payments core: the ledger store (database) and the chain (settlement). Implementations live
in `studio402.db` and `studio402.chain`; tests may use any object with these methods."""

from __future__ import annotations

from typing import Protocol

from studio402.payments.ledger import NewJob, PaymentKey, PaymentRecord


class LedgerStore(Protocol):
    async def get(self, key: PaymentKey) -> PaymentRecord | None: ...

    async def get_by_id(self, payment_id: str) -> PaymentRecord | None: ...

    async def get_by_client_id(self, payer: str, client_id: str) -> PaymentRecord | None: ...

    async def reserve(self, record: PaymentRecord) -> bool:
        """Insert a RESERVED record; False when its key (or client id) is already taken."""
        ...

    async def reopen(self, payment_id: str, now: float) -> bool:
        """FAILED -> RESERVED for a retry of the same authorization; False if someone else won."""
        ...

    async def begin_settlement(
        self, payment_id: str, tx_hash: str | None, raw_tx: str | None, job: NewJob, now: float
    ) -> None:
        """RESERVED -> SETTLING and create the job, held until the payment settles (one transaction)."""
        ...

    async def replace_settlement_tx(
        self, payment_id: str, previous: str | None, tx_hash: str, raw_tx: str, now: float
    ) -> bool:
        """The recorded transaction `previous` can never land (refused, or its nonce went to another
        transaction): record its re-signed successor. False if the record moved on (another process
        replaced or decided it first): then the successor must not be broadcast."""
        ...

    async def finish_settlement(self, payment_id: str, tx_hash: str | None, now: float) -> None:
        """SETTLING -> SETTLED and release the job (one transaction)."""
        ...

    async def fail(self, payment_id: str, reason: str, now: float, *, keep_job: bool = False) -> None:
        """-> FAILED (nothing was charged). The held job is deleted, or with keep_job (its id was already
        given out) marked failed with code payment_failed."""
        ...

    async def release_client_id(self, payment_id: str) -> None:
        """Let a FAILED payment give its client id (payment-identifier) to a new authorization."""
        ...

    async def stale_reserved(self, older_than: float) -> list[PaymentRecord]:
        """RESERVED payments not touched since `older_than` (their request died before broadcasting)."""
        ...

    async def settling(self) -> list[PaymentRecord]:
        """Payments whose on-chain outcome is not known yet (for the reconciler)."""
        ...

    async def spend_credit(self, record: PaymentRecord, job: NewJob) -> bool:
        """Debit the payer's credit and record a SETTLED credit payment with its job, atomically.
        False when the balance is too small (nothing changes)."""
        ...

    async def credit_balance(self, payer: str) -> int: ...
