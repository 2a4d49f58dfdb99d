"""Nano Banana (Gemini 3.1 Flash Image) and Nano Banana Pro (Gemini 3 Pro Image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, Prompt8k
from studio402.catalog.pricing import by_field

FlashAspect = Literal[
    "1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9", "21:9"
]
ProAspect = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
ALIASES: Mapping[str, str] = {"aspect_ratio": "aspectRatio"}


class NanoBananaGenerate(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = ALIASES
    prompt: Prompt8k
    aspectRatio: FlashAspect = "1:1"
    imageSize: Literal["512", "1K", "2K", "4K"] = "1K"
    thinkingLevel: Literal["minimal", "high"] = "minimal"


class NanoBananaEdit(NanoBananaGenerate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"images": MediaKind.IMAGE}
    images: Annotated[list[MediaRef], Field(min_length=1, max_length=14)]


class NanoBananaProGenerate(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = ALIASES
    prompt: Prompt8k
    aspectRatio: ProAspect = "1:1"
    imageSize: Literal["1K", "2K", "4K"] = "1K"


class NanoBananaProEdit(NanoBananaProGenerate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"images": MediaKind.IMAGE}
    images: Annotated[list[MediaRef], Field(min_length=1, max_length=14)]


FLASH_PRICE = by_field("imageSize", {"512": 45_000, "1K": 67_000, "2K": 101_000, "4K": 151_000})
PRO_PRICE = by_field("imageSize", {"1K": 134_000, "2K": 134_000, "4K": 240_000})


def _route(model: str, op: str, title: str, summary: str, body: type[GenerateInput], pro: bool) -> Route:
    return Route(
        model=model,
        operation=op,
        title=title,
        summary=summary,
        kind=Kind.IMAGE,
        input=body,
        price=PRO_PRICE if pro else FLASH_PRICE,
        eta="~10s" if pro else "~5s",
        poll_seconds=5,
        upstream="Gemini 3 Pro Image" if pro else "Gemini 3.1 Flash Image",
    )


ROUTES = (
    _route(
        "nano-banana",
        "generate",
        "Nano Banana - generate",
        "Fast text-to-image (Gemini 3.1 Flash Image), 512 px to 4K.",
        NanoBananaGenerate,
        pro=False,
    ),
    _route(
        "nano-banana",
        "edit",
        "Nano Banana - edit",
        "Edit or combine 1-14 reference images with a prompt.",
        NanoBananaEdit,
        pro=False,
    ),
    _route(
        "nano-banana-pro",
        "generate",
        "Nano Banana Pro - generate",
        "High-fidelity text-to-image (Gemini 3 Pro Image), up to 4K.",
        NanoBananaProGenerate,
        pro=True,
    ),
    _route(
        "nano-banana-pro",
        "edit",
        "Nano Banana Pro - edit",
        "Edit or combine 1-14 reference images, up to 4K.",
        NanoBananaProEdit,
        pro=True,
    ),
)
