"""Veo 3.1 and Veo 3.1 Fast (Google)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from studio402.catalog.base import GenerateInput, Kind, Route
from studio402.catalog.fields import MediaKind, MediaRef, NumStr, Prompt4k
from studio402.catalog.pricing import Flat, PerSecond
from studio402.errors import FieldError

ImageMode = Literal["none", "first-frame", "reference", "interpolation"]


class VeoGenerate(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = {
        "aspect_ratio": "aspectRatio",
        "duration_seconds": "durationSeconds",
        "seconds": "durationSeconds",
        "duration": "durationSeconds",
    }
    MEDIA: ClassVar[Mapping[str, MediaKind]] = {
        "image": MediaKind.IMAGE,
        "lastFrame": MediaKind.IMAGE,
        "referenceImages": MediaKind.IMAGE,
    }
    prompt: Prompt4k
    durationSeconds: Annotated[Literal["4", "6", "8"], NumStr] = "8"
    resolution: Literal["720p", "1080p"] = "720p"
    aspectRatio: Literal["16:9", "9:16"] = "16:9"
    negativePrompt: Annotated[str, Field(max_length=2000)] | None = None
    imageMode: ImageMode | None = Field(None, description="Defaults from the images given.")
    image: MediaRef | None = Field(None, description="First frame.")
    lastFrame: MediaRef | None = Field(None, description="Last frame (interpolation; needs image).")
    referenceImages: Annotated[list[MediaRef], Field(min_length=1, max_length=3)] | None = None

    def effective_mode(self) -> ImageMode:
        if self.imageMode is not None:
            return self.imageMode
        if self.referenceImages:
            return "reference"
        if self.image and self.lastFrame:
            return "interpolation"
        return "first-frame" if self.image else "none"

    def cross_check(self) -> list[FieldError]:
        mode, errors = self.effective_mode(), []
        want = {
            "none": (False, False, False),
            "first-frame": (True, False, False),
            "interpolation": (True, True, False),
            "reference": (False, False, True),
        }[mode]
        given = (self.image is not None, self.lastFrame is not None, bool(self.referenceImages))
        for name, needed, present in zip(("image", "lastFrame", "referenceImages"), want, given, strict=True):
            if needed and not present:
                errors.append(FieldError((name,), f"imageMode '{mode}' needs {name}", "missing"))
            elif present and not needed:
                errors.append(
                    FieldError((name,), f"{name} is not used with imageMode '{mode}'", "value_error")
                )
        return errors


class VeoFastGenerate(VeoGenerate):
    pass


ROUTES = (
    Route(
        "veo-3.1",
        "generate",
        "Veo 3.1 - generate",
        "Best quality/cost video with audio, up to 1080p; first-frame, interpolation and reference modes.",
        Kind.VIDEO,
        VeoGenerate,
        PerSecond("durationSeconds", (4, 6, 8), Flat(400_000)),
        "1-2min",
        15,
        "Google Veo 3.1",
    ),
    Route(
        "veo-3.1-fast",
        "generate",
        "Veo 3.1 Fast - generate",
        "Faster, cheaper Veo 3.1.",
        Kind.VIDEO,
        VeoFastGenerate,
        PerSecond("durationSeconds", (4, 6, 8), Flat(250_000)),
        "~30s",
        15,
        "Google Veo 3.1 Fast",
    ),
)
