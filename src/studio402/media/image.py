"""Still images: probe and decode untrusted bytes safely, encode our output with provenance metadata.

Decoding is restricted to web formats (PNG, JPEG, WebP, GIF) and checks the pixel count from the header before
any pixel is decoded (decompression bombs). `check_image` (inputs, before payment) walks the file's block
structure and decodes the first frame only, JPEG at 1/8 scale, charging a `DecodeBudget` first;
`probe_image` (our results) decodes every frame. Errors are `MediaError` with a stable code:

- ``media_unsupported``: not an image format we accept (checked on magic bytes, never on names);
- ``media_corrupt``: the header says one thing and the data cannot back it (truncated, broken stream);
- ``media_too_large``: more pixels (or frames) than the configured cap.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import quoteattr

from PIL import Image, ImageOps, PngImagePlugin

from studio402.errors import MediaError
from studio402.media import structure
from studio402.media.budget import DecodeBudget
from studio402.media.sniff import sniff

ImageFormat = Literal["png", "jpeg", "webp"]

DEFAULT_MAX_PIXELS = 50_000_000  # ~ 8K x 6K; above this a decode may use GBs of memory
DEFAULT_MAX_FRAMES = 2_000
IMAGE_MIMES: Mapping[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
DEFAULT_QUALITY: Mapping[str, int] = {"jpeg": 90, "webp": 85}
_JPEG_SCALE = 8  # libjpeg's smallest DCT scaling
_EXIF_IMAGE_DESCRIPTION = 0x010E
_EXIF_SOFTWARE = 0x0131
_XMP_NS = "https://studio402.dev/ns/1.0/"
_XML_NAME = re.compile(r"[^A-Za-z0-9_.-]")
# Errors Pillow raises for broken data (it has no single base class for them).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime: str
    width: int
    height: int
    frames: int


def probe_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_frames: int = DEFAULT_MAX_FRAMES
) -> ImageInfo:
    """Type, size and frame count of an image, after decoding all of it."""
    mime = _image_mime(data)
    _verify(data, mime)
    with _open(data, mime, max_pixels) as img:
        frames = int(getattr(img, "n_frames", 1))
        if frames > max_frames:
            raise MediaError(f"image has {frames} frames (max {max_frames})", code="media_too_large")
        for index in range(frames):
            _load_frame(img, index)
        return ImageInfo(mime=mime, width=img.width, height=img.height, frames=frames)


def check_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    budget: DecodeBudget | None = None,
) -> ImageInfo:
    """Type, size and frame count of an untrusted image, for the cost of one decoded frame.

    The first frame decoding proves the data is an image; later frames are never decoded (an animation of
    big frames was a minute of CPU). JPEG decodes at 1/8 scale: every coefficient is still read, so a
    cut file still fails, for a 64th of the pixels."""
    mime = _image_mime(data)
    walked = structure.walk(data, mime)
    _verify(data, mime)
    budget = budget or DecodeBudget.unbounded()
    with _open(data, mime, max_pixels) as img:
        width, height = img.size
        frames = walked if walked is not None else int(getattr(img, "n_frames", 1))
        if frames > max_frames:
            raise MediaError(f"image has {frames} frames (max {max_frames})", code="media_too_large")
        budget.spend_frames(frames, "an image")
        img.draft(None, (max(1, width // _JPEG_SCALE), max(1, height // _JPEG_SCALE)))
        budget.spend_pixels(img.width * img.height, f"a {width}x{height} image")
        _load_frame(img, 0)
        return ImageInfo(mime=mime, width=width, height=height, frames=frames)


def load_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode the first frame, upright (EXIF orientation applied), as RGB or RGBA."""
    mime = _image_mime(data)
    with _open(data, mime, max_pixels) as img:
        _load_frame(img, 0)
        upright = ImageOps.exif_transpose(img)
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        return upright.convert("RGBA" if has_alpha else "RGB")


def encode_image(
    img: Image.Image,
    fmt: ImageFormat,
    *,
    quality: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Encode to PNG (tEXt chunks), JPEG or WebP (EXIF ImageDescription/Software + XMP) with metadata.

    Transparency is kept for PNG and WebP; JPEG has none, so alpha is flattened onto white.
    """
    meta = dict(metadata or {})
    out = io.BytesIO()
    if fmt == "png":
        _normalise(img, keep_alpha=True).save(out, "PNG", pnginfo=_png_info(meta), compress_level=6)
    elif fmt == "jpeg":
        q = quality if quality is not None else DEFAULT_QUALITY["jpeg"]
        _flatten(img).save(out, "JPEG", quality=q, exif=_exif(meta), xmp=_xmp(meta), optimize=False)
    elif fmt == "webp":
        q = quality if quality is not None else DEFAULT_QUALITY["webp"]
        _normalise(img, keep_alpha=True).save(
            out, "WEBP", quality=q, method=4, exif=_exif(meta), xmp=_xmp(meta)
        )
    else:
        raise MediaError(f"cannot encode images as {fmt!r}", code="media_unsupported")
    return out.getvalue()


def _image_mime(data: bytes) -> str:
    mime = sniff(data)
    if mime is None or mime not in IMAGE_MIMES:
        raise MediaError(
            f"not a supported image (detected {mime or 'unknown data'})", code="media_unsupported"
        )
    return mime


def _open(data: bytes, mime: str, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data), formats=[IMAGE_MIMES[mime]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("image has too many pixels", code="media_too_large") from exc
    except _DECODE_ERRORS as exc:
        raise MediaError(f"image cannot be decoded: {exc}", code="media_corrupt") from exc
    if img.width * img.height > max_pixels:
        img.close()
        raise MediaError(
            f"image is {img.width}x{img.height} (max {max_pixels} pixels)", code="media_too_large"
        )
    return img


def _verify(data: bytes, mime: str) -> None:
    # verify() checks chunk CRCs and the end marker (PNG) without decoding pixels; it needs its own handle.
    try:
        with Image.open(io.BytesIO(data), formats=[IMAGE_MIMES[mime]]) as img:
            img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("image has too many pixels", code="media_too_large") from exc
    except _DECODE_ERRORS as exc:
        raise MediaError(f"image is corrupt: {exc}", code="media_corrupt") from exc


def _load_frame(img: Image.Image, index: int) -> None:
    try:
        img.seek(index)
        img.load()
    except _DECODE_ERRORS as exc:
        raise MediaError(
            f"image data is truncated or broken (frame {index}): {exc}", code="media_corrupt"
        ) from exc


def _normalise(img: Image.Image, *, keep_alpha: bool) -> Image.Image:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if has_alpha and keep_alpha:
        return img if img.mode == "RGBA" else img.convert("RGBA")
    if has_alpha:
        return _flatten(img)
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGB", "L"):
        return img
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _png_info(meta: Mapping[str, str]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "studio402")
    for key, value in meta.items():
        if _latin1(value):
            info.add_text(key, value)
        else:
            info.add_itxt(key, value)
    return info


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _exif(meta: Mapping[str, str]) -> bytes:
    exif = Image.Exif()
    exif[_EXIF_SOFTWARE] = "studio402"
    if meta:
        # EXIF ASCII strings: keep it 7-bit; the XMP packet carries the exact values.
        text = "; ".join(f"{k}={v}" for k, v in meta.items())
        exif[_EXIF_IMAGE_DESCRIPTION] = text.encode("ascii", "replace").decode("ascii")
    return exif.tobytes()


def _xmp(meta: Mapping[str, str]) -> bytes:
    attrs = " ".join(f"studio402:{_xml_name(k)}={quoteattr(v)}" for k, v in meta.items())
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:studio402="{_XMP_NS}" {attrs}/>'
        "</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    )
    return packet.encode("utf-8")


def _xml_name(key: str) -> str:
    local = key.removeprefix("studio402:")
    local = _XML_NAME.sub("_", local) or "_"
    return local if not local[0].isdigit() and local[0] not in ".-" else f"_{local}"
