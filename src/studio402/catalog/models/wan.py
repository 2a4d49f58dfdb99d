"""Wan 2.6 (Alibaba DashScope): text-to-video and image-to-video."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, NumStr, Prompt4k, Seed
from studio402.catalog.pricing import PerSecond, by_field

Duration = Annotated[Literal["5", "10", "15"], NumStr]
ALIASES: Mapping[str, str] = {"duration_seconds": "duration", "seconds": "duration"}


class _WanOptions(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = ALIASES
    prompt: Prompt4k
    duration: Duration = "5"
    negativePrompt: Annotated[str, Field(max_length=2000)] | None = None
    enablePromptExpansion: bool = True
    multiShots: bool = False
    audioUrl: MediaRef | None = Field(None, description="Optional soundtrack to sync the video to.")
    seed: Seed | None = None


class WanT2V(_WanOptions):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"audioUrl": MediaKind.AUDIO}
    size: Literal["1280*720", "720*1280", "1920*1080", "1080*1920"] = "1280*720"


class WanI2V(_WanOptions):
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {"image": MediaKind.IMAGE, "audioUrl": MediaKind.AUDIO}
    image: MediaRef = Field(description="First frame.")
    resolution: Literal["720p", "1080p"] = "720p"


_RATE_720, _RATE_1080 = 100_000, 150_000
T2V_RATE = by_field(
    "size", {"1280*720": _RATE_720, "720*1280": _RATE_720, "1920*1080": _RATE_1080, "1080*1920": _RATE_1080}
)
I2V_RATE = by_field("resolution", {"720p": _RATE_720, "1080p": _RATE_1080})

ROUTES = (
    Route(
        "wan-2.6",
        "t2v",
        "Wan 2.6 - t2v",
        "5-15 s text-to-video at 720p/1080p, multi-shot and audio sync.",
        Kind.VIDEO,
        WanT2V,
        PerSecond("duration", (5, 10, 15), T2V_RATE),
        "2-5min",
        15,
        "Alibaba Wan 2.6",
    ),
    Route(
        "wan-2.6",
        "i2v",
        "Wan 2.6 - i2v",
        "Animate a first frame, 5-15 s at 720p/1080p.",
        Kind.VIDEO,
        WanI2V,
        PerSecond("duration", (5, 10, 15), I2V_RATE),
        "2-5min",
        15,
        "Alibaba Wan 2.6",
    ),
)
