"""Deterministic procedural compositions: the "text-to-image" of the preview backend. Not AI.

A scene (palette, sky, sun, soft orbs, layered ridges, maybe stars or water) is drawn from a random generator
seeded by sha256(seed, prompt), so the same prompt + seed always gives the same picture and any change of
prompt gives another one. The scene is described in relative units, then painted with numpy at no more than
`WORK_MAX_SIDE` pixels on the long side and scaled up: the shapes are soft, so nothing is lost, and a 4K
canvas costs the same as a 1K one plus one resize.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from studio402.backends.preview.badge import draw_badge
from studio402.backends.preview.palette import RGB, Mood, Palette, make_palette

F32 = NDArray[np.float32]
WORK_MAX_SIDE = 1024
_WATER_WORDS = frozenset({"water", "sea", "ocean", "lake", "river", "beach", "shore", "harbor", "reflection"})
_BAYER4 = (
    np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32) + 0.5
) / 16 - 0.5


@dataclass(frozen=True, slots=True)
class Orb:
    x: float  # centre, fraction of width
    y: float  # centre, fraction of height
    radius: float  # fraction of the shorter side
    strength: float
    colour: RGB


@dataclass(frozen=True, slots=True)
class Ridge:
    base: float  # mean height of the ridge line, fraction of height from the top
    waves: tuple[tuple[float, float, float], ...]  # (amplitude, cycles across the width, phase)
    knots: tuple[float, ...]  # small irregular offsets, interpolated across the width
    blur: float  # edge softness in working pixels (far ridges are hazier)
    colour: RGB


@dataclass(frozen=True, slots=True, eq=False)
class Scene:
    palette: Palette
    clouds: F32  # small grid of smooth noise, upscaled over the sky
    sun: Orb
    orbs: tuple[Orb, ...]
    ridges: tuple[Ridge, ...]
    stars: F32  # (n, 3): x, y, brightness; empty unless the mood is night
    water: float  # waterline as a fraction of height, 0 for none


def compose_image(prompt: str, seed: int, width: int, height: int, *, label: bool = True) -> Image.Image:
    """An RGB composition of exactly `width` x `height`, with the preview badge unless `label` is False."""
    rgb, _ = paint(make_scene(prompt, seed), width, height)
    return draw_badge(rgb) if label else rgb


def compose_rgba(prompt: str, seed: int, width: int, height: int, *, label: bool = True) -> Image.Image:
    """Like `compose_image`, but the sky is transparent: alpha is the coverage of sun, orbs and ridges."""
    rgb, cover = paint(make_scene(prompt, seed), width, height)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(cover)
    return draw_badge(rgba) if label else rgba


def make_scene(prompt: str, seed: int) -> Scene:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "big")))
    layers = int(rng.integers(3, 6))
    palette = make_palette(prompt, hashlib.sha256(prompt.encode()).digest(), rng, layers)
    water_word = not _WATER_WORDS.isdisjoint(re.findall(r"[a-z]+", prompt.lower()))
    water = float(rng.uniform(0.64, 0.76)) if water_word or rng.random() < 0.15 else 0.0
    sun = Orb(
        x=float(rng.uniform(0.15, 0.85)),
        y=float(rng.uniform(0.12, 0.45)),
        radius=float(rng.uniform(0.05, 0.11)),
        strength=float(rng.uniform(0.5, 0.9)),
        colour=palette.sun,
    )
    return Scene(
        palette=palette,
        clouds=rng.random((int(rng.integers(3, 6)), int(rng.integers(5, 9)))).astype(np.float32),
        sun=sun,
        orbs=tuple(_orb(rng, palette) for _ in range(int(rng.integers(2, 7)))),
        ridges=tuple(_ridge(rng, i, layers, palette, water) for i in range(layers)),
        stars=_stars(rng) if palette.mood is Mood.NIGHT else np.zeros((0, 3), np.float32),
        water=water,
    )


def paint(scene: Scene, width: int, height: int) -> tuple[Image.Image, Image.Image]:
    """The RGB picture and its coverage mask ("L"), both `width` x `height`."""
    scale = min(1.0, WORK_MAX_SIDE / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    img = _sky(scene, w, h)
    cover = np.zeros((h, w), np.float32)
    _draw_stars(img, scene.stars)
    for orb in (*scene.orbs, scene.sun):
        _draw_orb(img, cover, orb, is_sun=orb is scene.sun)
    _draw_ridges(img, cover, scene)
    if scene.water:
        _draw_water(img, cover, scene.water, scene.palette)
    _vignette(img)
    rgb = Image.fromarray(_quantise(img), "RGB")
    mask = Image.fromarray(_quantise(cover), "L")
    if (w, h) != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
        mask = mask.resize((width, height), Image.Resampling.BILINEAR)
    return rgb, mask


def _orb(rng: np.random.Generator, palette: Palette) -> Orb:
    return Orb(
        x=float(rng.uniform(0.0, 1.0)),
        y=float(rng.uniform(0.05, 0.6)),
        radius=float(rng.uniform(0.04, 0.2)),
        strength=float(rng.uniform(0.08, 0.25)),
        colour=palette.glow,
    )


def _ridge(rng: np.random.Generator, index: int, layers: int, palette: Palette, water: float) -> Ridge:
    depth = index / max(1, layers - 1)  # 0 far .. 1 near
    top, bottom = (0.42, water - 0.02) if water else (0.45, 0.85)
    base = top + (bottom - top) * depth
    count = int(rng.integers(2, 5))
    waves = tuple(
        (
            float(rng.uniform(0.01, 0.07)) / (k + 1),
            float(rng.uniform(0.4, 3.0)) * (k + 1),
            float(rng.uniform(0, 6.3)),
        )
        for k in range(count)
    )
    knots = tuple(float(v) for v in rng.normal(0.0, 0.006 + 0.004 * depth, 33))
    return Ridge(
        base=base, waves=waves, knots=knots, blur=1.2 + 5.0 * (1 - depth), colour=palette.ridges[index]
    )


def _stars(rng: np.random.Generator) -> F32:
    n = 220
    pts = np.stack([rng.random(n), rng.random(n) ** 1.6 * 0.6, rng.uniform(0.3, 1.0, n) ** 2], axis=1)
    return pts.astype(np.float32)


def _sky(scene: Scene, w: int, h: int) -> F32:
    p = scene.palette
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None] ** 0.85
    top = np.asarray(p.sky_top, np.float32)
    bottom = np.asarray(p.sky_bottom, np.float32)
    base = top + (bottom - top) * t  # (h, 1, 3)
    clouds = _upscale(scene.clouds, w, h)
    # Clouds pull the sky towards the glow colour; computed as one broadcast product, then one add.
    img = clouds[..., None] * ((np.asarray(p.glow, np.float32) - base) * np.float32(0.3))
    img += base
    return img


def _upscale(grid: F32, w: int, h: int) -> F32:
    field = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(field, np.float32), 0.0, 1.0)


def _draw_stars(img: F32, stars: F32) -> None:
    if not len(stars):
        return
    h, w = img.shape[:2]
    xs = np.minimum((stars[:, 0] * w).astype(np.intp), w - 1)
    ys = np.minimum((stars[:, 1] * h).astype(np.intp), h - 1)
    img[ys, xs] += (stars[:, 2:3] * (1.0 - img[ys, xs])).astype(np.float32)


def _draw_orb(img: F32, cover: F32, orb: Orb, *, is_sun: bool) -> None:
    h, w = img.shape[:2]
    unit = min(w, h)
    cx, cy, r = orb.x * w, orb.y * h, orb.radius * unit
    reach = r * (3.5 if is_sun else 1.2)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    dist = np.sqrt(dx * dx + dy * dy)
    colour = np.asarray(orb.colour, np.float32)
    region = img[y0:y1, x0:x1]
    if is_sun:
        halo = np.clip(1.0 - dist / reach, 0.0, 1.0) ** 2 * orb.strength
        region += halo[..., None] * (colour - region) * 0.8
        disc = np.clip(r - dist + 0.5, 0.0, 1.0)
    else:
        disc = np.clip((r - dist) / (0.35 * r), 0.0, 1.0) * orb.strength
    region += disc[..., None] * (colour - region)
    np.maximum(cover[y0:y1, x0:x1], disc, out=cover[y0:y1, x0:x1])


def _draw_ridge(img: F32, cover: F32, ridge: Ridge, haze: RGB, line: F32, row_end: int) -> None:
    """Paint one ridge from its line down to `row_end` (below that a nearer ridge covers it)."""
    h = img.shape[0]
    row0 = max(0, int(line.min() - ridge.blur - 1))
    if row0 >= row_end:
        return
    rows = np.arange(row0, row_end, dtype=np.float32)[:, None] + 0.5
    below = rows - line[None, :]  # pixels below the ridge line (negative above)
    mask = np.clip(below / ridge.blur + 0.5, 0.0, 1.0)
    colour = np.asarray(ridge.colour, np.float32)
    # Lit near the top, darker downwards (by row, so no streaks), with haze hugging the ridge line.
    depth = np.clip((rows - ridge.base * h) / (0.35 * h), 0.0, 1.0)
    shade = (1.08 - 0.45 * depth)[..., None] * colour
    haze_w = np.clip(1.0 - below / (0.08 * h), 0.0, 1.0)
    haze_w *= haze_w * np.float32(0.3)
    region = img[row0:row_end]
    target = shade + haze_w[..., None] * (np.asarray(haze, np.float32) - colour)
    target -= region
    target *= mask[..., None]
    region += target
    np.maximum(cover[row0:row_end], mask, out=cover[row0:row_end])


def _draw_ridges(img: F32, cover: F32, scene: Scene) -> None:
    h, w = img.shape[:2]
    lines = [_ridge_line(r, w) * np.float32(h) for r in scene.ridges]
    bottom = int(scene.water * h) + 1 if scene.water else h
    for i, ridge in enumerate(scene.ridges):
        if i + 1 < len(lines):
            row_end = min(bottom, int(lines[i + 1].max() + scene.ridges[i + 1].blur) + 2)
        else:
            row_end = bottom
        _draw_ridge(img, cover, ridge, scene.palette.sky_bottom, lines[i], row_end)
    if bottom < h:
        cover[bottom:] = 1.0


def _ridge_line(ridge: Ridge, w: int) -> F32:
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    line = np.full(w, ridge.base, np.float32)
    for amp, cycles, phase in ridge.waves:
        line += amp * np.sin(np.float32(2 * np.pi * cycles) * x + np.float32(phase))
    knots = np.asarray(ridge.knots, np.float32)
    line += np.interp(x, np.linspace(0.0, 1.0, len(knots)), knots).astype(np.float32)
    return line


def _draw_water(img: F32, cover: F32, level: float, palette: Palette) -> None:
    h = img.shape[0]
    line = int(level * h)
    depth = h - line
    if depth <= 0 or line < depth:
        return
    k = np.arange(depth)
    ripple = np.round(np.sin(k * 0.9) * np.minimum(k, 12) * 0.15).astype(np.intp)
    src = np.clip(line - 1 - k + ripple, 0, h - 1)
    reflection = img[src]
    tint = np.asarray(palette.ridges[0], np.float32) * 0.6
    fade = (0.25 + 0.45 * k / depth).astype(np.float32)[:, None, None]
    sheen = (1.0 + 0.05 * np.sin(k * 1.7)).astype(np.float32)[:, None, None]
    img[line:] = (reflection + (tint - reflection) * fade) * sheen
    cover[line:] = 1.0


def _vignette(img: F32) -> None:
    h, w = img.shape[:2]
    vx = 1.0 - 0.18 * np.linspace(-1.0, 1.0, w, dtype=np.float32) ** 2
    vy = 1.0 - 0.22 * np.linspace(-1.0, 1.0, h, dtype=np.float32) ** 2
    img *= (vy[:, None] * vx[None, :])[..., None]


def _quantise(values: F32) -> NDArray[np.uint8]:
    h, w = values.shape[:2]
    # Ordered dither: smooth gradients without 8-bit banding, and still deterministic.
    dither = np.tile(_BAYER4, ((h + 3) // 4, (w + 3) // 4))[:h, :w]
    if values.ndim == 3:
        dither = dither[..., None]
    out = values * np.float32(255.0)
    out += dither + np.float32(0.5)
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)
