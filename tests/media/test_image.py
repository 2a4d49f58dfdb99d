from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from studio402.errors import MediaError
from studio402.media.image import ImageFormat, encode_image, load_image, probe_image
from tests.media import samples

META = {"studio402:backend": "preview", "studio402:seed": "42"}


@pytest.mark.parametrize(
    ("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_probe_reports_type_and_size(fmt: str, mime: str) -> None:
    info = probe_image(samples.image_bytes(fmt, 70, 30))
    assert (info.mime, info.width, info.height, info.frames) == (mime, 70, 30, 1)


def test_probe_counts_and_decodes_every_gif_frame() -> None:
    info = probe_image(samples.animated_gif(frames=3))
    assert info.mime == "image/gif" and info.frames == 3


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_corrupt(fmt: str) -> None:
    data = samples.image_bytes(fmt, 200, 150)
    with pytest.raises(MediaError) as err:
        probe_image(data[: len(data) // 2])
    assert err.value.code == "media_corrupt"


def test_png_cut_before_its_end_marker_is_corrupt() -> None:
    data = samples.image_bytes("PNG", 50, 50)
    with pytest.raises(MediaError) as err:
        probe_image(data[:-12])  # drop the IEND chunk only
    assert err.value.code == "media_corrupt"


def test_text_named_png_is_unsupported() -> None:
    with pytest.raises(MediaError) as err:
        probe_image(b"definitely not an image")
    assert err.value.code == "media_unsupported"


def test_pixel_cap_applies_before_decoding() -> None:
    with pytest.raises(MediaError) as err:
        probe_image(samples.image_bytes("PNG", 40, 40), max_pixels=1000)
    assert err.value.code == "media_too_large"


def test_decompression_bomb_header_is_refused() -> None:
    # A tiny PNG whose header claims 100000 x 100000 pixels.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    bomb += chunk(b"IEND", b"")
    with pytest.raises(MediaError) as err:
        probe_image(bomb)
    assert err.value.code == "media_too_large"


def test_png_metadata_is_in_text_chunks() -> None:
    data = encode_image(samples.gradient(), "png", metadata=META)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.info["studio402:backend"] == "preview"
        assert img.info["studio402:seed"] == "42"
        assert img.info["Software"] == "studio402"


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_jpeg_and_webp_metadata_in_exif_and_xmp(fmt: ImageFormat) -> None:
    data = encode_image(samples.gradient(), fmt, metadata=META)
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        assert "studio402:backend=preview" in exif[0x010E]
        assert exif[0x0131] == "studio402"
        xmp = img.info["xmp"]
        xmp_text = xmp.decode() if isinstance(xmp, bytes) else xmp
        assert 'studio402:backend="preview"' in xmp_text


def test_unicode_metadata_survives_png() -> None:
    data = encode_image(samples.gradient(), "png", metadata={"studio402:note": "café ☕"})
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.info["studio402:note"] == "café ☕"


def test_rgba_is_flattened_for_jpeg_and_kept_for_png_and_webp() -> None:
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (8, 8, 24, 24))
    with Image.open(io.BytesIO(encode_image(rgba, "jpeg"))) as jpeg:
        assert jpeg.mode == "RGB"
        assert (
            min(np.asarray(jpeg.convert("RGB"))[1, 1]) > 240
        )  # transparent areas become white, not black or red
    alpha_formats: tuple[ImageFormat, ...] = ("png", "webp")
    for fmt in alpha_formats:
        with Image.open(io.BytesIO(encode_image(rgba, fmt))) as img:
            assert img.mode == "RGBA"
            assert img.getchannel("A").getextrema() == (0, 255)


def test_quality_changes_jpeg_size() -> None:
    img = samples.gradient(256, 256)
    assert len(encode_image(img, "jpeg", quality=30)) < len(encode_image(img, "jpeg", quality=95))


def test_encoding_is_deterministic() -> None:
    img = samples.gradient(80, 60)
    formats: tuple[ImageFormat, ...] = ("png", "jpeg", "webp")
    for fmt in formats:
        assert encode_image(img, fmt, metadata=META) == encode_image(img, fmt, metadata=META)


def test_unknown_output_format_is_refused() -> None:
    with pytest.raises(MediaError) as err:
        encode_image(samples.gradient(), "gif")  # type: ignore[arg-type]  # deliberately wrong
    assert err.value.code == "media_unsupported"


def test_load_image_applies_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = io.BytesIO()
    samples.gradient(40, 20).save(out, "JPEG", exif=exif.tobytes())
    img = load_image(out.getvalue())
    assert img.size == (20, 40) and img.mode == "RGB"


def test_load_image_keeps_alpha() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (10, 10), (1, 2, 3, 4)).save(out, "PNG")
    img = load_image(out.getvalue())
    assert img.mode == "RGBA" and img.getpixel((0, 0)) == (1, 2, 3, 4)
