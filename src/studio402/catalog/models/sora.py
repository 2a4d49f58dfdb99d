"""Sora 2 and Sora 2 Pro (OpenAI Videos API; retired upstream on 2026-09-24, served by other backends)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, NumStr, Prompt4k
from studio402.catalog.pricing import Flat, PerSecond, by_field

Seconds = Annotated[Literal["4", "8", "12"], NumStr]
_BY_ASPECT = {"16:9": "1280x720", "9:16": "720x1280"}


def _daydreams_compat(data: Any) -> Any:
    """Daydreams-style bodies give `aspect_ratio` (16:9 / 9:16) and may say `resolution: "720p"`."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    aspect = data.pop("aspect_ratio", None)
    if aspect is not None and aspect not in _BY_ASPECT:
        raise ValueError("aspect_ratio must be 16:9 or 9:16")
    size = data.get("size")
    if size == "720p" or (size is None and aspect is not None):
        data["size"] = _BY_ASPECT[aspect or "9:16"]
    elif aspect is not None and size in _BY_ASPECT.values() and size != _BY_ASPECT[aspect]:
        raise ValueError("aspect_ratio contradicts size")
    return data


class _SoraBase(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = {"duration_seconds": "seconds", "resolution": "size"}
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"input_reference": MediaKind.IMAGE}
    prompt: Prompt4k
    seconds: Seconds = "4"
    input_reference: MediaRef | None = Field(None, description="Optional first frame (image-to-video).")
    autoCrop: bool = Field(True, description="Crop the reference image to the target aspect ratio.")

    _compat = model_validator(mode="before")(_daydreams_compat)


class Sora2Generate(_SoraBase):
    size: Literal["1280x720", "720x1280"] = "720x1280"


class Sora2ProGenerate(_SoraBase):
    size: Literal["1280x720", "720x1280", "1792x1024", "1024x1792"] = "720x1280"


SECONDS = (4, 8, 12)
PRO_RATE = by_field(
    "size", {"1280x720": 300_000, "720x1280": 300_000, "1792x1024": 500_000, "1024x1792": 500_000}
)

ROUTES = (
    Route(
        "sora-2",
        "generate",
        "Sora 2 - generate",
        "4-12 s clips at 720p; pass input_reference for image-to-video.",
        Kind.VIDEO,
        Sora2Generate,
        PerSecond("seconds", SECONDS, Flat(100_000)),
        "1-3min",
        15,
        "OpenAI Sora 2",
    ),
    Route(
        "sora-2-pro",
        "generate",
        "Sora 2 Pro - generate",
        "Higher fidelity and larger sizes up to 1792x1024.",
        Kind.VIDEO,
        Sora2ProGenerate,
        PerSecond("seconds", SECONDS, PRO_RATE),
        "2-5min",
        15,
        "OpenAI Sora 2 Pro",
    ),
)
