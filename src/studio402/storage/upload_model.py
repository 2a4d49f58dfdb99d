"""Paid upload slots as values: the slot, its states and the one table of legal state changes (no I/O here;
db/upload_store.py stores them, storage/uploads.py runs the 3-step upload)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studio402.transitions import Transitions


class UploadState(StrEnum):
    ISSUED = "issued"  # paid for; nothing written yet
    UPLOADED = "uploaded"  # the bytes are stored under its pathname, checked by content
    CONFIRMED = "confirmed"  # its wallet confirmed it: now a usable media input


UPLOAD_TRANSITIONS: Transitions[UploadState] = Transitions.of(
    {UploadState.ISSUED: {UploadState.UPLOADED}, UploadState.UPLOADED: {UploadState.CONFIRMED}}
)


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    job_id: str
    payer: str
    pathname: str
    content_type: str
    max_bytes: int
    expires_at: float
    state: UploadState
    size: int | None
