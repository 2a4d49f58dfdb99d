"""Media "bombs": small files that promise huge decode work (pixels, frames, or format structure).

Built by hand around one frame Pillow or PyAV encodes, so each takes well under two seconds to make."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from studio402.media.video import X264Settings, encode_mp4


def gif(side: int, frames: int) -> bytes:
    """`frames` full frames of side x side in one colour (LZW packs each into ~side²/1300 bytes)."""
    out = io.BytesIO()
    Image.new("P", (side, side), 1).save(out, "GIF")
    single = out.getvalue()
    start = _gif_first_image(single)
    return single[:start] + single[start:-1] * frames + b";"


def gif_with_tiny_subblocks(count: int) -> bytes:
    """An 8x8 GIF whose comment extension is `count` one-byte sub-blocks."""
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    small = out.getvalue()
    start = _gif_first_image(small)
    return small[:start] + b"\x21\xfe" + b"\x01a" * count + b"\x00" + small[start:]


def png(side: int, *, channels: int = 3) -> bytes:
    """A side x side RGB (or RGBA) PNG of zeros: a few hundred KB for 50 megapixels."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + side * channels)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    colour_type = {3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_with_empty_chunks(count: int) -> bytes:
    """An 8x8 PNG with `count` empty ancillary chunks before its pixels."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    small = out.getvalue()
    return small[:33] + _chunk(b"abCd", b"") * count + small[33:]  # after the signature and IHDR


def jpeg_with_comments(count: int) -> bytes:
    """An 8x8 JPEG with `count` empty COM segments after its SOI marker."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    small = out.getvalue()
    return small[:2] + b"\xff\xfe\x00\x02" * count + small[2:]


def webp_animation(side: int, frames: int) -> bytes:
    """An animated WebP: a side x side canvas and `frames` lossless 1x1 frames (each redraws the canvas)."""
    out = io.BytesIO()
    Image.new("RGBA", (1, 1), (255, 0, 0, 255)).save(out, "WEBP", lossless=True)
    still = out.getvalue()
    assert still[12:16] == b"VP8L", "Pillow wrote a simple lossless WebP"
    frame = still[12:]  # the VP8L chunk
    anmf = _webp_chunk(b"ANMF", bytes(6) + bytes(6) + b"\x64\x00\x00" + b"\x00" + frame)
    vp8x = _webp_chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + _u24(side - 1) + _u24(side - 1))
    anim = _webp_chunk(b"ANIM", bytes(4) + b"\x00\x00")
    body = b"WEBP" + vp8x + anim + anmf * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mp4(width: int, height: int, copies: int, *, keyframe: bool = True) -> bytes:
    """An H.264 MP4: a keyframe (or not), then `copies` of one P-frame: a long video made in one encode."""
    pictures = [np.zeros((height, width, 3), np.uint8), np.full((height, width, 3), 40, np.uint8)]
    x264 = X264Settings(params="bframes=0")
    encoded = encode_mp4(pictures, width=width, height=height, fps=24, settings=x264)
    with av.open(io.BytesIO(encoded), "r") as source:
        stream = source.streams.video[0]
        key, delta = [bytes(p) for p in source.demux(stream) if p.size]
        out = io.BytesIO()
        with av.open(out, "w", format="mp4") as target:
            copy = target.add_stream_from_template(stream)
            for index, payload in enumerate(_frames(key, delta, copies, keyframe=keyframe)):
                packet = av.Packet(payload)
                packet.pts = packet.dts = index
                packet.time_base = Fraction(1, 24)
                packet.is_keyframe = index == 0 and keyframe
                packet.stream = copy
                target.mux(packet)
    return out.getvalue()


def mp4_with_empty_boxes(count: int) -> bytes:
    """A one-frame MP4 followed by `count` empty top-level `free` boxes."""
    frame = np.zeros((16, 16, 3), np.uint8)
    return encode_mp4([frame], width=16, height=16, fps=24) + b"\x00\x00\x00\x08free" * count


def _frames(key: bytes, delta: bytes, copies: int, *, keyframe: bool) -> Iterator[bytes]:
    if keyframe:
        yield key
    for _ in range(copies):
        yield delta


def _gif_first_image(data: bytes) -> int:
    """Offset of the first image descriptor (after the header, colour table and extensions)."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos] == 0x21:  # extension: label, then sub-blocks up to a zero length
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C
    return pos


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _webp_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")
