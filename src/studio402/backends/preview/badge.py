"""The small "preview" badge every preview output carries, so nobody mistakes it for AI generation."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

BADGE_TEXT = "preview"
_FILL = (12, 12, 16, 120)
_INK = (255, 255, 255, 225)


@lru_cache(maxsize=32)
def badge(width: int, height: int) -> tuple[Image.Image, tuple[int, int]]:
    """The RGBA badge for a canvas of this size and its top-left corner (even, bottom-right area).

    Callers must not modify the returned image (it is cached).
    """
    size = max(9, min(64, round(min(width, height) * 0.03)))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = (int(v) for v in font.getbbox(BADGE_TEXT))
    pad_x, pad_y = round(size * 0.55), round(size * 0.3)
    w = min(width, right - left + 2 * pad_x)
    h = min(height, bottom - top + 2 * pad_y)
    patch = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(patch)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(2, h // 3), fill=_FILL)
    draw.text((pad_x - left, pad_y - top), BADGE_TEXT, font=font, fill=_INK)
    margin = max(2, round(size * 0.6))
    x = max(0, width - w - margin) & ~1
    y = max(0, height - h - margin) & ~1
    return patch, (x, y)


def draw_badge(img: Image.Image) -> Image.Image:
    """A copy of `img` (RGB or RGBA) with the badge composited in the bottom-right corner."""
    patch, (x, y) = badge(img.width, img.height)
    out = img.copy()
    if out.mode == "RGBA":
        out.alpha_composite(patch, (x, y))
    else:
        out.paste(patch, (x, y), patch)
    return out
