"""FLUX.2 [pro] and FLUX.2 [max] (Black Forest Labs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, Prompt8k
from studio402.catalog.pricing import Table, by_field

Aspect = Literal["1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "4:3", "3:4"]
ALIASES: Mapping[str, str] = {"aspectRatio": "aspect_ratio"}
IMAGES: Mapping[str, MediaKind] = {"images": MediaKind.IMAGE}


class _FluxOptions(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = ALIASES
    prompt: Prompt8k
    aspect_ratio: Aspect = "1:1"
    output_format: Literal["webp", "jpg", "png"] = "webp"
    output_quality: Annotated[int, Field(ge=0, le=100)] = 80
    safety_tolerance: Annotated[int, Field(ge=0, le=5)] = 2
    prompt_upsampling: bool = False


class Flux2ProGenerate(_FluxOptions):
    resolution: Literal["0.5 MP", "1 MP", "2 MP"] = "1 MP"


class Flux2ProEdit(Flux2ProGenerate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = IMAGES
    images: Annotated[list[MediaRef], Field(min_length=1, max_length=8)]


class Flux2MaxGenerate(_FluxOptions):
    resolution: Literal["0.5 MP", "1 MP", "2 MP", "4 MP"] = "1 MP"


class Flux2MaxEdit(Flux2MaxGenerate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = IMAGES
    images: Annotated[list[MediaRef], Field(min_length=1, max_length=10)]


PRO_GENERATE = by_field("resolution", {"0.5 MP": 20_000, "1 MP": 30_000, "2 MP": 40_000})
PRO_EDIT = by_field("resolution", {"0.5 MP": 30_000, "1 MP": 45_000, "2 MP": 60_000})
MAX_PRICE = by_field("resolution", {"0.5 MP": 40_000, "1 MP": 70_000, "2 MP": 100_000, "4 MP": 170_000})


def _route(model: str, op: str, summary: str, body: type[GenerateInput], price: Table) -> Route:
    pro = model == "flux-2-pro"
    return Route(
        model=model,
        operation=op,
        title=f"FLUX.2 [{'pro' if pro else 'max'}] - {op}",
        summary=summary,
        kind=Kind.IMAGE,
        input=body,
        price=price,
        eta="~5s" if pro else "~8s",
        poll_seconds=5,
        upstream=f"Black Forest Labs FLUX.2 [{'pro' if pro else 'max'}]",
    )


ROUTES = (
    _route("flux-2-pro", "generate", "Sharp photoreal images up to 2 MP.", Flux2ProGenerate, PRO_GENERATE),
    _route("flux-2-pro", "edit", "Edit with 1-8 reference images.", Flux2ProEdit, PRO_EDIT),
    _route("flux-2-max", "generate", "Highest FLUX quality, up to 4 MP.", Flux2MaxGenerate, MAX_PRICE),
    _route("flux-2-max", "edit", "Edit with 1-10 reference images, up to 4 MP.", Flux2MaxEdit, MAX_PRICE),
)
