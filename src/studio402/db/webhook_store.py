"""The webhook delivery port on SQLAlchemy Core: record a job's terminal event once, read the due ones, and
write each attempt's outcome as a compare-and-set (state per the transition table, and the attempt count
read), so two senders that picked the same delivery never both record their attempt."""

from __future__ import annotations

from sqlalchemy import Connection, Update, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from studio402.db.engine import Database
from studio402.db.schema import jobs
from studio402.db.schema import webhook_deliveries as wd
from studio402.db.transitions import may_move
from studio402.jobs.deliveries import (
    DELIVERY_TRANSITIONS,
    AttemptResult,
    DeliveryState,
    DueDelivery,
    NewDelivery,
)

_DUE = (
    select(wd.c.id, wd.c.url, wd.c.payload, wd.c.attempts, jobs.c.webhook_secret)
    .select_from(wd.outerjoin(jobs, jobs.c.id == wd.c.job_id))
    .where(wd.c.state == DeliveryState.PENDING.value, wd.c.next_at <= bindparam("now"))
    .order_by(wd.c.next_at)
    .limit(bindparam("limit"))
)


def _attempted(result: AttemptResult) -> Update:
    return (
        update(wd)
        .where(
            wd.c.id == bindparam("did"),
            wd.c.attempts == bindparam("read_attempts"),
            may_move(wd.c.state, DELIVERY_TRANSITIONS, result.state),
        )
        .values(
            state=result.state.value,
            attempts=result.attempts,
            last_status=result.last_status,
            last_error=result.last_error,
            next_at=result.next_at,
            updated_at=result.updated_at,
        )
    )


class SqlWebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, delivery: NewDelivery) -> bool:
        """Insert a PENDING delivery due now; False when this job's event is already recorded."""
        row = {
            "id": delivery.id,
            "job_id": delivery.job_id,
            "event": delivery.event,
            "url": delivery.url,
            "payload": delivery.payload,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_at": delivery.created_at,
            "created_at": delivery.created_at,
            "updated_at": delivery.created_at,
        }
        try:
            await self._db.write(lambda conn: conn.execute(insert(wd).values(row)))
        except IntegrityError:
            return False
        return True

    async def due(self, now: float, limit: int) -> list[DueDelivery]:
        """Pending deliveries whose time has come, oldest first."""

        def op(conn: Connection) -> list[DueDelivery]:
            rows = conn.execute(_DUE, {"now": now, "limit": limit})
            return [DueDelivery(r.id, r.url, r.payload, r.attempts, r.webhook_secret) for r in rows]

        return await self._db.read(op)

    async def attempted(self, delivery: DueDelivery, result: AttemptResult) -> bool:
        """Record an attempt's outcome if the delivery is still as `delivery` read it; False otherwise."""
        params = {"did": delivery.id, "read_attempts": delivery.attempts}
        return await self._db.write(lambda conn: bool(conn.execute(_attempted(result), params).rowcount))

    async def state(self, delivery_id: str) -> DeliveryState | None:
        query = select(wd.c.state).where(wd.c.id == delivery_id)
        value = await self._db.read(lambda conn: conn.scalar(query))
        return DeliveryState(value) if value is not None else None
