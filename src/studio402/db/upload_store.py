"""The upload slot port on SQLAlchemy Core: one slot per paid upload; state changes are compare-and-set
updates built from the upload transition table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, select, update
from sqlalchemy.exc import IntegrityError

from studio402.db.engine import Database
from studio402.db.schema import uploads
from studio402.db.transitions import may_move
from studio402.storage.upload_model import UPLOAD_TRANSITIONS, Upload, UploadState

c = uploads.c


def _upload(row: Any) -> Upload:
    m = row._mapping
    return Upload(
        m["id"],
        m["job_id"],
        m["payer"],
        m["pathname"],
        m["content_type"],
        m["max_bytes"],
        m["expires_at"],
        UploadState(m["state"]),
        m["size"],
    )


def _row(upload: Upload, now: float) -> dict[str, Any]:
    return {
        "id": upload.id,
        "job_id": upload.job_id,
        "payer": upload.payer,
        "pathname": upload.pathname,
        "content_type": upload.content_type,
        "max_bytes": upload.max_bytes,
        "expires_at": upload.expires_at,
        "state": upload.state.value,
        "size": upload.size,
        "created_at": now,
        "updated_at": now,
    }


class SqlUploadStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, upload: Upload, now: float) -> bool:
        """False when the slot's job or pathname already has one (a concurrent replay made it)."""
        try:
            await self._db.write(lambda conn: conn.execute(uploads.insert().values(_row(upload, now))))
        except IntegrityError:
            return False
        return True

    async def by_id(self, upload_id: str) -> Upload | None:
        return await self._one(c.id == upload_id)

    async def by_job(self, job_id: str) -> Upload | None:
        return await self._one(c.job_id == job_id)

    async def by_pathname(self, pathname: str) -> Upload | None:
        return await self._one(c.pathname == pathname)

    async def uploaded(self, upload_id: str, size: int, now: float) -> bool:
        """The bytes are stored: ISSUED -> UPLOADED; False if another writer got there first."""
        return await self._move(upload_id, UploadState.UPLOADED, size=size, updated_at=now)

    async def confirmed(self, upload_id: str, now: float) -> bool:
        """Its wallet confirmed it: UPLOADED -> CONFIRMED; False if it was not uploaded (or confirmed)."""
        return await self._move(upload_id, UploadState.CONFIRMED, updated_at=now)

    async def _one(self, where: ColumnElement[bool]) -> Upload | None:
        def op(conn: Connection) -> Upload | None:
            found = conn.execute(select(uploads).where(where)).first()
            return _upload(found) if found is not None else None

        return await self._db.read(op)

    async def _move(self, upload_id: str, target: UploadState, **values: Any) -> bool:
        moved = (
            update(uploads)
            .where(c.id == upload_id, may_move(c.state, UPLOAD_TRANSITIONS, target))
            .values(state=target.value, **values)
        )
        return await self._db.write(lambda conn: bool(conn.execute(moved).rowcount))
