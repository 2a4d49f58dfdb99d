"""Seedance 2 Pro and Fast (ByteDance): text-to-video and image/reference-to-video."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from studio402.catalog.base import GenerateInput, Kind, MediaSlot, Route
from studio402.catalog.fields import MediaKind, MediaRef, NumStr, Prompt4k, Seed
from studio402.catalog.pricing import PerSecond, Table
from studio402.errors import FieldError

DURATIONS = tuple(range(4, 13))
Duration = Annotated[Literal["4", "5", "6", "7", "8", "9", "10", "11", "12"], NumStr]
Aspect = Literal["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"]
PixelSize = Literal["720x720", "720x960", "960x720", "1280x720", "720x1280", "1280x540"]
UrlKind = Literal["image", "video"]
MAX_IMAGES, MAX_VIDEOS, MAX_AUDIOS = 9, 3, 3
_REF = re.compile(r"@(image|video|audio)(\d+)\b")


def _resolution_compat(data: Any) -> Any:
    """The directory listing spells outputResolution as `resolution: "720p"`."""
    if isinstance(data, dict) and data.get("resolution") in ("480p", "720p", "1080p"):
        data = dict(data)
        if "outputResolution" in data and data["outputResolution"] != data["resolution"]:
            raise ValueError("resolution and outputResolution disagree")
        data["outputResolution"] = data.pop("resolution")
    return data


def _keyframe_compat(data: Any) -> Any:
    """The directory listing passes keyframes as `image` / `last_image` instead of `urls`."""
    if isinstance(data, dict) and ("image" in data or "last_image" in data):
        data = dict(data)
        if "urls" in data:
            raise ValueError("give either urls or image/last_image, not both")
        urls = [data.pop("image", None), data.pop("last_image", None)]
        data["urls"] = [u for u in urls if u is not None]
        data.setdefault("mode", "keyframe")
    return data


class _SeedanceBase(GenerateInput):
    ALIASES: ClassVar[Mapping[str, str]] = {
        "aspect_ratio": "aspectRatio",
        "duration_seconds": "duration",
        "seconds": "duration",
    }
    duration: Duration = "5"
    aspectRatio: Aspect = "16:9"
    resolution: PixelSize | None = Field(None, description="Exact pixel size (advanced).")
    seed: Seed | None = None
    camera_fixed: bool = False
    generate_audio: bool = False

    _resolution = model_validator(mode="before")(_resolution_compat)


class _ProOptions(_SeedanceBase):
    outputResolution: Literal["480p", "720p", "1080p"] = "720p"
    upscaleResolution: Literal["4k"] | None = Field(
        None, description="4K upscale; significantly more expensive."
    )


class _FastOptions(_SeedanceBase):
    outputResolution: Literal["480p", "720p"] = "720p"


class SeedanceT2V(_ProOptions):
    prompt: Prompt4k


class SeedanceFastT2V(_FastOptions):
    prompt: Prompt4k


class _I2VMixin(GenerateInput):
    prompt: Prompt4k | None = None
    mode: Literal["keyframe", "reference"] = "keyframe"
    urls: Annotated[list[MediaRef], Field(min_length=1, max_length=MAX_IMAGES + MAX_VIDEOS)]
    urlMediaTypes: list[UrlKind] | None = Field(None, description="One entry per url: image or video.")
    audioUrls: Annotated[list[MediaRef], Field(max_length=MAX_AUDIOS)] | None = None

    _keyframes = model_validator(mode="before")(_keyframe_compat)

    def media_slots(self) -> Iterator[MediaSlot]:
        types = self.urlMediaTypes or ["image"] * len(self.urls)
        for i, (url, kind) in enumerate(zip(self.urls, types, strict=False)):
            yield MediaSlot(("urls", i), url, MediaKind(kind))
        for i, url in enumerate(self.audioUrls or ()):
            yield MediaSlot(("audioUrls", i), url, MediaKind.AUDIO)

    def cross_check(self) -> list[FieldError]:
        errors: list[FieldError] = []
        if self.urlMediaTypes is not None and len(self.urlMediaTypes) != len(self.urls):
            errors.append(
                FieldError(("urlMediaTypes",), "must have exactly one entry per url", "value_error")
            )
            return errors
        types = self.urlMediaTypes or ["image"] * len(self.urls)
        if self.mode == "keyframe":
            errors += _keyframe_errors(types, self.audioUrls)
        elif self.urlMediaTypes is not None:  # else checked once the real kinds are read from the content
            errors += check_references(self.prompt or "", types, len(self.audioUrls or ()))
        return errors


def _keyframe_errors(types: Sequence[str], audio: Sequence[str] | None) -> list[FieldError]:
    errors = []
    if len(types) > 2:
        errors.append(
            FieldError(("urls",), "keyframe mode takes a first and an optional last frame", "too_long")
        )
    if any(t != "image" for t in types):
        errors.append(FieldError(("urlMediaTypes",), "keyframe mode takes images only", "value_error"))
    if audio:
        errors.append(FieldError(("audioUrls",), "audio references need mode 'reference'", "value_error"))
    return errors


def check_references(prompt: str, types: Sequence[str], n_audio: int) -> list[FieldError]:
    """Reference mode limits, and `@imageN` / `@videoN` / `@audioN` pointing at existing inputs
    (images and videos are counted separately among urls; audio among audioUrls)."""
    counts = {"image": types.count("image"), "video": types.count("video"), "audio": n_audio}
    errors = []
    if counts["image"] > MAX_IMAGES or counts["video"] > MAX_VIDEOS:
        errors.append(
            FieldError(("urls",), f"at most {MAX_IMAGES} images and {MAX_VIDEOS} videos", "too_long")
        )
    for kind, number in _REF.findall(prompt):
        n = int(number)
        if not 1 <= n <= counts[kind]:
            have = counts[kind]
            errors.append(
                FieldError(
                    ("prompt",), f"@{kind}{n} refers to a missing {kind} ({have} given)", "value_error"
                )
            )
    return errors


class SeedanceI2V(_I2VMixin, _ProOptions):
    pass


class SeedanceFastI2V(_I2VMixin, _FastOptions):
    pass


_PRO_RATES = {"480p": 90_000, "720p": 190_000, "1080p": 420_000}
PRO_RATE = Table(
    ("outputResolution", "upscaleResolution"),
    {**{(r, ""): p for r, p in _PRO_RATES.items()}, **{(r, "4k"): 540_000 for r in _PRO_RATES}},
)
FAST_RATE = Table(("outputResolution", "upscaleResolution"), {("480p", ""): 80_000, ("720p", ""): 170_000})


def _route(model: str, op: str, summary: str, body: type[GenerateInput], rate: Table) -> Route:
    fast = model.endswith("-fast")
    return Route(
        model=model,
        operation=op,
        title=f"Seedance 2 {'Fast' if fast else 'Pro'} - {op}",
        summary=summary,
        kind=Kind.VIDEO,
        input=body,
        price=PerSecond("duration", DURATIONS, rate),
        eta="1-3min",
        poll_seconds=15,
        upstream=f"ByteDance Seedance 2.0{' Fast' if fast else ''}",
    )


ROUTES = (
    _route("seedance", "t2v", "Pro text-to-video up to 1080p, optional 4K upscale.", SeedanceT2V, PRO_RATE),
    _route(
        "seedance",
        "i2v",
        "Pro keyframe or multimodal reference video (images, videos, audio).",
        SeedanceI2V,
        PRO_RATE,
    ),
    _route(
        "seedance-fast",
        "t2v",
        "Fast text-to-video at 480p/720p: the default happy path.",
        SeedanceFastT2V,
        FAST_RATE,
    ),
    _route(
        "seedance-fast", "i2v", "Fast keyframe or reference video at 480p/720p.", SeedanceFastI2V, FAST_RATE
    ),
)
