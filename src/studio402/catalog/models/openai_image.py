"""GPT Image 2 and GPT Image 1.5 (OpenAI Images API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, Prompt32k
from studio402.catalog.pricing import Table
from studio402.errors import FieldError

Size = Literal["1024x1024", "1536x1024", "1024x1536", "auto"]
Quality = Literal["low", "medium", "high"]
Format = Literal["png", "jpeg", "webp"]
Moderation = Literal["low", "auto"]
Images = Annotated[list[MediaRef], Field(min_length=1, max_length=16)]
IMAGES: Mapping[str, MediaKind] = {"images": MediaKind.IMAGE}


class GptImage2Generate(GenerateInput):
    prompt: Prompt32k
    quality: Quality = "medium"
    size: Size = "auto"
    background: Literal["opaque", "auto"] = "auto"
    output_format: Format = "png"
    moderation: Moderation = "auto"


class GptImage2Edit(GptImage2Generate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = IMAGES
    images: Images


class GptImage15Generate(GenerateInput):
    prompt: Prompt32k
    quality: Quality = "medium"
    size: Size = "auto"
    background: Literal["transparent", "opaque", "auto"] = "auto"
    output_format: Format = "png"
    moderation: Moderation = "auto"

    def cross_check(self) -> list[FieldError]:
        if self.background == "transparent" and self.output_format == "jpeg":
            return [
                FieldError(("output_format",), "a transparent background needs png or webp", "value_error")
            ]
        return []


class GptImage15Edit(GptImage15Generate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = IMAGES
    input_fidelity: Literal["high", "low"] = "low"
    images: Images


def _table(square: Mapping[str, int], wide: Mapping[str, int]) -> Table:
    """Price by quality x size; `auto` may pick a landscape or portrait canvas, so it is priced as one."""
    rows: dict[tuple[str, ...], int] = {}
    for quality in ("low", "medium", "high"):
        rows[(quality, "1024x1024")] = square[quality]
        for size in ("1536x1024", "1024x1536", "auto"):
            rows[(quality, size)] = wide[quality]
    return Table(("quality", "size"), rows)


GPT2_PRICE = _table(
    {"low": 5_000, "medium": 41_000, "high": 140_000}, {"low": 8_000, "medium": 62_000, "high": 210_000}
)
GPT15_PRICE = _table(
    {"low": 9_000, "medium": 34_000, "high": 133_000}, {"low": 13_000, "medium": 50_000, "high": 200_000}
)


def _route(model: str, op: str, summary: str, body: type[GenerateInput], price: Table, eta: str) -> Route:
    name = "GPT Image 2" if model == "gpt-image-2" else "GPT Image 1.5"
    return Route(
        model=model,
        operation=op,
        title=f"{name} - {op}",
        summary=summary,
        kind=Kind.IMAGE,
        input=body,
        price=price,
        eta=eta,
        poll_seconds=10,
        upstream=f"OpenAI {model}",
    )


ROUTES = (
    _route(
        "gpt-image-2",
        "generate",
        "Best default image quality; can take minutes.",
        GptImage2Generate,
        GPT2_PRICE,
        "can take minutes",
    ),
    _route(
        "gpt-image-2",
        "edit",
        "Edit with up to 16 reference images; can take minutes.",
        GptImage2Edit,
        GPT2_PRICE,
        "can take minutes",
    ),
    _route(
        "gpt-image-1.5",
        "generate",
        "Fast OpenAI image generation, transparent backgrounds.",
        GptImage15Generate,
        GPT15_PRICE,
        "~3s",
    ),
    _route(
        "gpt-image-1.5",
        "edit",
        "Edit up to 16 images, optional high input fidelity.",
        GptImage15Edit,
        GPT15_PRICE,
        "~3s",
    ),
)
