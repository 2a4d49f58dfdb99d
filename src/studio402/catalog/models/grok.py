"""Grok Imagine image and video (xAI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, NumStr, Prompt4k, Prompt8k
from studio402.catalog.pricing import Flat, PerSecond

ImageAspect = Literal[
    "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "2:1", "1:2", "19.5:9", "9:19.5", "20:9", "9:20"
]
VideoAspect = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]


class GrokGenerate(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = {"aspectRatio": "aspect_ratio"}
    prompt: Prompt8k
    aspect_ratio: ImageAspect = "1:1"


class GrokEdit(GrokGenerate):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"images": MediaKind.IMAGE}
    images: Annotated[list[MediaRef], Field(min_length=1, max_length=5)]


class GrokVideoGenerate(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = {
        "aspectRatio": "aspect_ratio",
        "duration_seconds": "duration",
        "seconds": "duration",
        "size": "resolution",
    }
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"image": MediaKind.IMAGE}
    prompt: Prompt4k
    duration: Annotated[Literal["3", "6", "9", "12", "15"], NumStr] = "6"
    resolution: Literal["480p", "720p"] = "720p"
    aspect_ratio: VideoAspect = "16:9"
    image: MediaRef | None = Field(
        None, description="Optional first frame: turns the request into image-to-video."
    )


ROUTES = (
    Route(
        "grok",
        "generate",
        "Grok Imagine - generate",
        "Quick images in 13 aspect ratios, ultra-wide included.",
        Kind.IMAGE,
        GrokGenerate,
        Flat(70_000),
        "~3s",
        5,
        "xAI Grok Imagine image",
    ),
    Route(
        "grok",
        "edit",
        "Grok Imagine - edit",
        "Edit images with a prompt.",
        Kind.IMAGE,
        GrokEdit,
        Flat(22_000),
        "~3s",
        5,
        "xAI Grok Imagine image",
    ),
    Route(
        "grok-video",
        "generate",
        "Grok Imagine Video - generate",
        "3-15 s clips at 480p/720p; pass `image` for image-to-video.",
        Kind.VIDEO,
        GrokVideoGenerate,
        PerSecond("duration", (3, 6, 9, 12, 15), Flat(50_000)),
        "~17s",
        15,
        "xAI Grok Imagine video",
    ),
)
