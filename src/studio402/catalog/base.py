"""What a catalog route is: its input schema, price rule and metadata."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from studio402.catalog.fields import CallbackUrl, MediaKind
from studio402.catalog.pricing import Flat, PerSecond, Table
from studio402.errors import FieldError


class Kind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class MediaSlot:
    """One media reference inside a body: where it is, what it must be."""

    loc: tuple[str | int, ...]
    ref: str
    kind: MediaKind


class RouteInput(BaseModel):
    """Base of every route body. Unknown fields are refused; aliases are renamed before validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Alternative spellings accepted on input (other x402 listings), mapped to our canonical name.
    ALIASES: ClassVar[Mapping[str, str]] = {}
    # Fields holding media references and what they must contain.
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {}

    def cross_check(self) -> list[FieldError]:
        """Rules spanning several fields; each broken rule names the field to fix."""
        return []

    def media_slots(self) -> Iterator[MediaSlot]:
        for name, kind in self.MEDIA.items():
            value = getattr(self, name)
            if isinstance(value, str):
                yield MediaSlot((name,), value, kind)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    yield MediaSlot((name, i), item, kind)


class GenerateInput(RouteInput):
    """Base of generate bodies: every generation may ask for a webhook."""

    callBackUrl: CallbackUrl | None = None


@dataclass(frozen=True, slots=True)
class Route:
    model: str
    operation: str
    title: str  # "Nano Banana Pro - generate"
    summary: str
    kind: Kind
    input: type[RouteInput]
    price: Flat | Table | PerSecond
    eta: str  # typical time, as the spec lists it
    poll_seconds: int  # how often clients should poll (spec: images 5, gpt-image 10, video 15)
    upstream: str  # the model family behind it, for docs

    @property
    def key(self) -> str:
        return f"{self.model}/{self.operation}"

    @property
    def path(self) -> str:
        if self.kind is Kind.UPLOAD:
            return "/api/upload"
        return f"/api/generate/{self.model}/{self.operation}"

    @property
    def job_type(self) -> str:
        return f"{self.model}-{self.operation}"


@dataclass(frozen=True, slots=True)
class InputFacts:
    """What the content checks learned of one media input before payment (backends refuse by these)."""

    loc: tuple[str | int, ...]
    kind: MediaKind
    mime: str = ""
    size: int = 0
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class ValidatedRequest:
    """A body that passed its route's schema, in canonical form (canonical names, defaults filled).
    `inputs` is filled once its media were resolved and checked."""

    route: Route
    params: RouteInput
    canonical: Mapping[str, Any]
    canonical_json: str
    fingerprint: str
    inputs: tuple[InputFacts, ...] = ()
