"""What the SDK returns: typed values built from the server's JSON (which is kept as `raw`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

MICROS_PER_USD = 1_000_000


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    LOADING = "loading"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class Price:
    """An amount of a USD stablecoin with 6 decimals (USDC, pathUSD): integer micro-dollars."""

    micros: int

    @property
    def usd(self) -> str:
        return f"{Decimal(self.micros) / MICROS_PER_USD:f}"

    @classmethod
    def from_usd(cls, usd: str | float | Decimal) -> Price:
        return cls(int(Decimal(str(usd)) * MICROS_PER_USD))


@dataclass(frozen=True, slots=True)
class Route:
    """One paid generate route, as the server's OpenAPI describes it."""

    model: str
    operation: str
    kind: str  # "image" | "video"
    summary: str
    min_usd: str | None
    max_usd: str | None
    path: str


@dataclass(frozen=True, slots=True)
class Quote:
    model: str
    operation: str
    price: Price
    rule: str
    request: dict[str, Any]  # the body as the server will run it (defaults filled in)
    accepts: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    status: JobStatus
    progress: float | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        progress = data.get("progress")
        return cls(
            job_id=str(data["jobId"]),
            status=JobStatus(data["status"]),
            progress=float(progress) if isinstance(progress, int | float) else None,
            result=data.get("result"),
            error=data.get("error"),
            raw=data,
        )

    @property
    def urls(self) -> dict[str, str]:
        """The result's media URLs by kind (`image`, `video`, `thumbnail`); signed, they expire."""
        result = self.result or {}
        return {
            k.removesuffix("Url"): v for k, v in result.items() if k.endswith("Url") and isinstance(v, str)
        }


@dataclass(frozen=True, slots=True)
class Generated:
    """One paid generation: the job, what it cost, and the files saved (empty with `wait=False`)."""

    job_id: str
    status: JobStatus
    price: Price
    job: Job | None = None
    urls: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    payment: dict[str, Any] | None = None  # the decoded PAYMENT-RESPONSE (settlement receipt), if any

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "status": self.status.value,
            "price": {"usd": self.price.usd, "micros": str(self.price.micros)},
            "files": [str(p) for p in self.files],
            "urls": self.urls,
            "transaction": (self.payment or {}).get("transaction"),
        }
