"""Real MIME types from magic bytes.

File names, extensions and declared Content-Type headers are never trusted: they are whatever the sender
wrote. `sniff` looks only at the first bytes of the payload and returns None when it does not recognise them.
"""

from __future__ import annotations

from collections.abc import Callable

# ISO base media (MP4 family) brands -> MIME. The major brand decides; compatible brands are a fallback.
_FTYP_BRANDS: dict[bytes, str] = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4P ": "audio/mp4",
    b"F4A ": "audio/mp4",
    b"M4V ": "video/mp4",
    b"M4VH": "video/mp4",
    b"M4VP": "video/mp4",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"MSNV": "video/mp4",
    b"f4v ": "video/mp4",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
}

# MPEG audio: bitrate index 15 and sample-rate index 3 are invalid; version 01 and layer 00 are reserved.
_MPEG_BAD_BITRATE = 0xF
_MPEG_BAD_RATE = 0x3


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes really are, or None if they are nothing we recognise."""
    head = bytes(data[:64])
    for check in _CHECKS:
        mime = check(head)
        if mime is not None:
            return mime
    return None


def _fixed_signatures(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    return None


def _riff(head: bytes) -> str | None:
    if not head.startswith(b"RIFF") or len(head) < 12:
        return None
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])


def _ftyp(head: bytes) -> str | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    major = _FTYP_BRANDS.get(head[8:12])
    if major is not None:
        return major
    # Compatible brands follow the 4-byte minor version.
    end = min(max(size, 16), len(head))
    for i in range(16, end - 3, 4):
        brand = _FTYP_BRANDS.get(head[i : i + 4])
        if brand is not None:
            return brand
    return None


def _ebml(head: bytes) -> str | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    # The DocType element (id 0x4282) sits in the EBML header, within the first bytes.
    if b"webm" in head:
        return "video/webm"
    if b"matroska" in head:
        return "video/x-matroska"
    return None


def _ogg(head: bytes) -> str | None:
    if not head.startswith(b"OggS"):
        return None
    return "video/ogg" if b"\x80theora" in head else "audio/ogg"


def _adts_or_mpeg_frame(head: bytes) -> str | None:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version = (head[1] >> 3) & 0x3
    layer = (head[1] >> 1) & 0x3
    if layer == 0:
        # Layer bits 00 with MPEG sync: an AAC ADTS header (its 'version' bit is 0 or 1, never 01 pattern).
        return "audio/aac" if head[1] & 0xF6 == 0xF0 else None
    if version == 0x1:
        return None
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 0x3
    if bitrate in (0, _MPEG_BAD_BITRATE) or rate == _MPEG_BAD_RATE:
        return None
    return "audio/mpeg"


_CHECKS: tuple[Callable[[bytes], str | None], ...] = (
    _fixed_signatures,
    _riff,
    _ftyp,
    _ebml,
    _ogg,
    _adts_or_mpeg_frame,
)
