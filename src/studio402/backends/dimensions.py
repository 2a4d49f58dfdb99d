"""What a request asks for in pixels, seconds and frames, derived from each route's own fields."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio402.catalog import Kind, Route

DEFAULT_FPS = 24
_IMAGE_SIZE_PIXELS = {"512": 512**2, "1K": 1024**2, "2K": 2048**2, "4K": 4096**2}
_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}


@dataclass(frozen=True, slots=True)
class Geometry:
    width: int
    height: int
    duration_s: float = 0.0
    fps: int = DEFAULT_FPS


def _ratio(text: str) -> float:
    w, h = text.split(":")
    return float(w) / float(h)


def _round(value: float, step: int) -> int:
    return max(step, int(round(value / step)) * step)


def by_area(aspect: str, pixels: int, step: int = 16) -> tuple[int, int]:
    """Width x height with `pixels` area (about) and the aspect ratio, multiples of `step`."""
    r = _ratio(aspect)
    return _round(math.sqrt(pixels * r), step), _round(math.sqrt(pixels / r), step)


def by_short_side(aspect: str, short: int) -> tuple[int, int]:
    r = _ratio(aspect)
    if r >= 1:
        return _round(short * r, 2), short
    return short, _round(short / r, 2)


def _wxh(text: str) -> tuple[int, int]:
    w, h = text.replace("*", "x").split("x")
    return int(w), int(h)


def _image(p: Mapping[str, Any]) -> tuple[int, int]:
    if "imageSize" in p:  # Gemini
        return by_area(p["aspectRatio"], _IMAGE_SIZE_PIXELS[p["imageSize"]])
    if "size" in p:  # OpenAI: "auto" lets the model choose; the preview picks a square
        return (1024, 1024) if p["size"] == "auto" else _wxh(p["size"])
    if "resolution" in p:  # FLUX: "1 MP"
        return by_area(p["aspect_ratio"], int(float(p["resolution"].split()[0]) * 1_000_000))
    return by_area(p.get("aspect_ratio", "1:1"), 1024**2)  # Grok


def _video_size(p: Mapping[str, Any]) -> tuple[int, int]:
    if "size" in p:  # Sora "1280x720", Wan "1280*720"
        return _wxh(p["size"])
    if isinstance(p.get("resolution"), str) and "x" in p["resolution"]:  # Seedance exact size
        return _wxh(p["resolution"])
    if p.get("upscaleResolution") == "4k":
        return by_short_side(p.get("aspectRatio", "16:9"), _SHORT_SIDE["4k"])
    tier = p.get("outputResolution") or p.get("resolution") or "720p"
    aspect = p.get("aspectRatio") or p.get("aspect_ratio") or "16:9"
    return by_short_side(aspect, _SHORT_SIDE[tier])


def _seconds(p: Mapping[str, Any]) -> float:
    for field in ("seconds", "duration", "durationSeconds"):
        if field in p:
            return float(p[field])
    return 5.0


def geometry(route: Route, params: Mapping[str, Any]) -> Geometry:
    if route.kind is Kind.VIDEO:
        w, h = _video_size(params)
        return Geometry(w - w % 2, h - h % 2, _seconds(params))
    w, h = _image(params)
    return Geometry(w, h)
