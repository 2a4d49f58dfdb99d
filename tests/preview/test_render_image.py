from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from studio402.backends.preview.render import render_image
from studio402.backends.preview.stylize import fit
from studio402.errors import MediaError
from studio402.media.image import ImageFormat, probe_image
from studio402.media.sniff import sniff

MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
FORMATS: list[ImageFormat] = ["png", "jpeg", "webp"]


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
    base[..., 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base += rng.normal(0, 10, base.shape).astype(np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_to_image_honours_size_and_format(fmt: ImageFormat) -> None:
    data = render_image(prompt="a lighthouse at dusk", seed=1, width=96, height=64, fmt=fmt)
    info = probe_image(data)
    assert (info.mime, info.width, info.height) == (MIMES[fmt], 96, 64)
    assert sniff(data) == MIMES[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
def test_outputs_say_they_are_previews(fmt: ImageFormat) -> None:
    img = _decode(render_image(prompt="x", seed=1, width=64, height=64, fmt=fmt))
    if fmt == "png":
        assert img.info["studio402:backend"] == "preview"
        assert "not AI" in img.info["studio402:generator"]
    else:
        assert "studio402:backend=preview" in img.getexif()[0x010E]


def test_same_inputs_same_bytes() -> None:
    for fmt in FORMATS:
        first = render_image(prompt="a lighthouse", seed=9, width=80, height=48, fmt=fmt)
        assert first == render_image(prompt="a lighthouse", seed=9, width=80, height=48, fmt=fmt)


def test_different_prompts_differ() -> None:
    a = render_image(prompt="a lighthouse", seed=9, width=80, height=48, fmt="png")
    b = render_image(prompt="a submarine", seed=9, width=80, height=48, fmt="png")
    assert a != b


def test_transparent_png_and_webp_have_alpha_but_jpeg_cannot() -> None:
    alpha_formats: tuple[ImageFormat, ...] = ("png", "webp")
    for fmt in alpha_formats:
        img = _decode(render_image(prompt="hills", seed=2, width=96, height=96, fmt=fmt, transparent=True))
        assert img.mode == "RGBA" and np.asarray(img.getchannel("A")).min() < 50
    jpeg = _decode(render_image(prompt="hills", seed=2, width=96, height=96, fmt="jpeg", transparent=True))
    assert jpeg.mode == "RGB" and jpeg.size == (96, 96)


def test_edit_transforms_the_source_and_keeps_the_requested_size() -> None:
    src = _photo(200, 100)
    data = render_image(prompt="make it painterly", seed=4, width=128, height=96, fmt="png", sources=[src])
    out = _decode(data).convert("RGB")
    assert out.size == (128, 96)
    fitted = fit(src, 128, 96)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(fitted, np.int16)).mean() > 8  # really transformed
    assert _decode(data).info["studio402:operation"] == "edit"


def test_edit_keeps_the_layout_of_the_source() -> None:
    src = Image.new("RGB", (200, 100), (20, 30, 90))
    src.paste((250, 230, 120), (100, 0, 200, 100))  # dark left half, bright right half
    out = np.asarray(
        _decode(render_image(prompt="p", seed=4, width=128, height=64, fmt="png", sources=[src])).convert(
            "RGB"
        ),
        np.float32,
    )
    top = out[:40]  # away from the badge
    assert top[:, :56].mean() + 20 < top[:, 72:].mean()


def test_edit_is_deterministic_and_seed_picks_the_style() -> None:
    src = _photo(120, 90)
    a = render_image(prompt="p", seed=1, width=96, height=72, fmt="webp", sources=[src])
    b = render_image(prompt="p", seed=1, width=96, height=72, fmt="webp", sources=[src])
    c = render_image(prompt="p", seed=2, width=96, height=72, fmt="webp", sources=[src])
    assert a == b and a != c


def test_several_sources_become_a_collage() -> None:
    red = Image.new("RGB", (50, 50), (230, 20, 20))
    blue = Image.new("RGB", (50, 50), (20, 20, 230))
    out = np.asarray(
        _decode(
            render_image(prompt="p", seed=0, width=128, height=64, fmt="png", sources=[red, blue])
        ).convert("RGB"),
        np.int16,
    )
    left, right = out[:, :64].mean(axis=(0, 1)), out[:, 64:].mean(axis=(0, 1))
    assert left[0] > left[2] and right[2] > right[0]


def test_transparent_edit_keeps_the_source_alpha() -> None:
    src = Image.new("RGBA", (64, 64), (200, 100, 50, 0))
    src.paste((200, 100, 50, 255), (16, 16, 48, 48))
    img = _decode(
        render_image(prompt="p", seed=0, width=64, height=64, fmt="png", sources=[src], transparent=True)
    )
    alpha = np.asarray(img.getchannel("A"))
    assert alpha[2, 2] == 0 and alpha[32, 32] == 255


def test_tiny_sources_and_outputs_still_work() -> None:
    data = render_image(
        prompt="p", seed=0, width=16, height=16, fmt="png", sources=[Image.new("RGB", (5, 5))]
    )
    assert probe_image(data).width == 16


@pytest.mark.parametrize(("width", "height"), [(8, 64), (64, 9000), (8000, 8000)])
def test_impossible_sizes_are_refused(width: int, height: int) -> None:
    with pytest.raises(MediaError) as err:
        render_image(prompt="p", seed=0, width=width, height=height, fmt="png")
    assert err.value.code == "invalid_dimensions"
