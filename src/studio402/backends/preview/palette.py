"""Colour palettes for preview compositions, steered by words of the prompt.

A few dozen words carry a hue and a mood ("sunset" is warm and glowing, "night" dark, "snow" pale). Prompts
without any of them get a hue from their hash, so every prompt still has its own colours. The seed only
jitters the result: same prompt + seed, same palette.
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

RGB = tuple[float, float, float]


class Mood(StrEnum):
    DAY = "day"
    GLOW = "glow"
    NIGHT = "night"
    PALE = "pale"
    VIVID = "vivid"


# word -> (hue in degrees, mood or None)
_WORDS: dict[str, tuple[float, Mood | None]] = {
    "red": (2, None),
    "fire": (12, Mood.GLOW),
    "lava": (8, Mood.GLOW),
    "sunset": (18, Mood.GLOW),
    "autumn": (26, None),
    "orange": (30, None),
    "sunrise": (34, Mood.GLOW),
    "desert": (36, Mood.DAY),
    "sand": (40, Mood.DAY),
    "amber": (40, Mood.GLOW),
    "gold": (45, Mood.GLOW),
    "golden": (45, Mood.GLOW),
    "yellow": (54, None),
    "summer": (50, Mood.DAY),
    "lime": (85, None),
    "spring": (95, Mood.DAY),
    "meadow": (100, Mood.DAY),
    "green": (120, None),
    "forest": (135, None),
    "jungle": (128, Mood.VIVID),
    "mint": (155, Mood.PALE),
    "teal": (175, None),
    "cyan": (185, Mood.VIVID),
    "ice": (195, Mood.PALE),
    "lake": (200, Mood.DAY),
    "sea": (202, Mood.DAY),
    "ocean": (206, Mood.DAY),
    "water": (200, Mood.DAY),
    "river": (198, Mood.DAY),
    "sky": (210, Mood.DAY),
    "winter": (205, Mood.PALE),
    "snow": (210, Mood.PALE),
    "fog": (215, Mood.PALE),
    "mist": (215, Mood.PALE),
    "blue": (220, None),
    "rain": (218, Mood.PALE),
    "city": (225, Mood.NIGHT),
    "night": (232, Mood.NIGHT),
    "moon": (228, Mood.NIGHT),
    "star": (240, Mood.NIGHT),
    "stars": (240, Mood.NIGHT),
    "space": (250, Mood.NIGHT),
    "galaxy": (265, Mood.NIGHT),
    "indigo": (250, None),
    "violet": (270, None),
    "purple": (278, None),
    "dream": (285, Mood.PALE),
    "cyber": (290, Mood.VIVID),
    "neon": (300, Mood.VIVID),
    "magenta": (305, Mood.VIVID),
    "pink": (330, None),
    "flower": (335, Mood.DAY),
    "rose": (345, None),
    "cherry": (350, Mood.DAY),
    "blossom": (340, Mood.PALE),
}
_TOKEN = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Palette:
    """Colours of one scene, each RGB in [0, 1]; `ridges` go from far (hazy) to near (dark)."""

    sky_top: RGB
    sky_bottom: RGB
    glow: RGB
    sun: RGB
    ridges: tuple[RGB, ...]
    mood: Mood


def prompt_hue(prompt: str, digest: bytes) -> tuple[float, Mood | None]:
    """The prompt's hue in degrees and mood: the circular mean of its colour words, else from its hash."""
    hits = [_WORDS[w] for w in _TOKEN.findall(prompt.lower()) if w in _WORDS]
    if not hits:
        return (int.from_bytes(digest[:2], "big") / 65536 * 360.0, None)
    x = sum(math.cos(math.radians(h)) for h, _ in hits)
    y = sum(math.sin(math.radians(h)) for h, _ in hits)
    moods = [m for _, m in hits if m is not None]
    return (math.degrees(math.atan2(y, x)) % 360.0, moods[0] if moods else None)


def make_palette(prompt: str, digest: bytes, rng: np.random.Generator, layers: int) -> Palette:
    hue, mood = prompt_hue(prompt, digest)
    hue = (hue + float(rng.uniform(-12, 12))) / 360.0
    mood = mood or (Mood.DAY, Mood.GLOW, Mood.VIVID, Mood.PALE)[int(rng.integers(0, 4))]
    sat, light = _MOOD_SL[mood]
    # An analogous or complementary partner hue gives the sky and the glow some contrast.
    partner = (hue + float(rng.choice([0.08, -0.08, 0.5, 0.42]))) % 1.0
    sky = _blend_hue(hue, _MOOD_SKY_HUE[mood] / 360.0, 0.45)
    top = _hls(sky, light * 0.75, sat)
    bottom = _hls(_blend_hue(sky, partner, 0.6), min(0.92, light * 1.25), sat * 0.85)
    glow = _hls(partner, min(0.95, light * 1.45), min(1.0, sat * 1.1))
    sun = _hls(partner + 0.02, 0.93 if mood is not Mood.NIGHT else 0.88, 0.7)
    ridges = tuple(
        _hls(
            hue - 0.04 * i,
            light * (0.95 - 0.7 * i / max(1, layers - 1)),
            sat * (0.55 + 0.35 * i / max(1, layers)),
        )
        for i in range(layers)
    )
    return Palette(sky_top=top, sky_bottom=bottom, glow=glow, sun=sun, ridges=ridges, mood=mood)


# mood -> (saturation, lightness) of the sky; ridges derive from these
_MOOD_SL: dict[Mood, tuple[float, float]] = {
    Mood.DAY: (0.55, 0.62),
    Mood.GLOW: (0.75, 0.55),
    Mood.NIGHT: (0.55, 0.22),
    Mood.PALE: (0.30, 0.72),
    Mood.VIVID: (0.90, 0.50),
}


# Skies lean towards what a sky of that mood looks like, so a "forest" gets green hills, not a green sky.
_MOOD_SKY_HUE: dict[Mood, float] = {
    Mood.DAY: 210.0,
    Mood.GLOW: 25.0,
    Mood.NIGHT: 240.0,
    Mood.PALE: 215.0,
    Mood.VIVID: 290.0,
}


def _blend_hue(a: float, b: float, t: float) -> float:
    """Move hue `a` towards `b` (both in turns) by fraction `t`, the short way round the circle."""
    delta = ((b - a + 0.5) % 1.0) - 0.5
    return (a + delta * t) % 1.0


def _hls(hue: float, light: float, sat: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, max(0.0, min(1.0, light)), max(0.0, min(1.0, sat)))
    return (r, g, b)
