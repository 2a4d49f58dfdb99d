"""Bounded walks over the block structure of PNG, JPEG and GIF files, before Pillow parses them.

Pillow reads PNG chunks, JPEG segments and GIF sub-blocks one at a time in Python: a 12 MB PNG of empty
chunks kept it busy for 8 s. These walks only read lengths, stop at caps no real file comes near, and
count GIF frames without decoding any (a GIF declares no frame count). Errors are `MediaError`:
``media_too_large`` past a cap, ``media_corrupt`` for a block that runs past the end of the file.
"""

from __future__ import annotations

from studio402.errors import MediaError

# libpng writes 8 KB IDAT chunks: a 25 MB PNG has ~3,200 of them (an APNG two more per frame).
MAX_PNG_CHUNKS = 16_384
# Segments before the first scan: real files have a few dozen (an ICC profile may take up to 255).
MAX_JPEG_SEGMENTS = 2_048
# A progressive JPEG has about 10 scans; each one is a pass over every block of the image.
MAX_JPEG_SCANS = 100
# Encoders write 255-byte sub-blocks: a 25 MB GIF has ~100,000 of them.
MAX_GIF_SUBBLOCKS = 200_000

_PNG_SIGNATURE = 8
_GIF_HEADER = 13  # signature, version, logical screen descriptor
_GIF_IMAGE, _GIF_EXTENSION, _GIF_TRAILER = 0x2C, 0x21, 0x3B
_JPEG_SOS = 0xDA
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length follows


def walk(data: bytes, mime: str) -> int | None:
    """Check the block structure of an image; the frames counted on the way (GIF), else None."""
    if mime == "image/png":
        _walk_png(data)
    elif mime == "image/jpeg":
        _walk_jpeg(data)
    elif mime == "image/gif":
        return _walk_gif(data)
    return None


def _walk_png(data: bytes) -> None:
    pos, chunks = _PNG_SIGNATURE, 0
    while pos + 12 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise MediaError(f"PNG has more than {MAX_PNG_CHUNKS} chunks", code="media_too_large")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos > len(data):
        raise MediaError("PNG chunk runs past the end of the file (truncated)", code="media_corrupt")


def _walk_jpeg(data: bytes) -> None:
    pos, segments = 2, 0
    while pos + 4 <= len(data):
        segments += 1  # fill bytes count too: Pillow reads them one by one
        if segments > MAX_JPEG_SEGMENTS:
            raise MediaError(f"JPEG has more than {MAX_JPEG_SEGMENTS} segments", code="media_too_large")
        if data[pos] != 0xFF:
            raise MediaError(f"JPEG segment expected at byte {pos}", code="media_corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _JPEG_SOS:
            break
        pos += 2 if marker in _JPEG_STANDALONE else 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    # In entropy-coded data a 0xFF byte is stuffed (FF 00), so FF DA there is always a scan header.
    scans = data.count(b"\xff\xda", pos)
    if scans > MAX_JPEG_SCANS:
        raise MediaError(f"JPEG has {scans} scans (max {MAX_JPEG_SCANS})", code="media_too_large")


def _walk_gif(data: bytes) -> int:
    flags = data[10] if len(data) > 10 else 0
    pos = _GIF_HEADER + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = subblocks = 0
    while pos < len(data):
        kind = data[pos]
        if kind == _GIF_TRAILER:
            return frames
        if kind == _GIF_EXTENSION:
            pos += 2
        elif kind == _GIF_IMAGE:
            frames += 1
            local = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1  # descriptor, table, LZW size
        else:
            raise MediaError(f"unknown GIF block 0x{kind:02x} at byte {pos}", code="media_corrupt")
        # Sub-blocks: a length byte then that many bytes, up to a zero length.
        while pos < len(data) and data[pos]:
            subblocks += 1
            if subblocks > MAX_GIF_SUBBLOCKS:
                raise MediaError(f"GIF has more than {MAX_GIF_SUBBLOCKS} data blocks", code="media_too_large")
            pos += data[pos] + 1
        pos += 1
    if pos > len(data):
        raise MediaError("GIF data block runs past the end of the file (truncated)", code="media_corrupt")
    return frames  # no trailer after the last complete block: readers accept that
