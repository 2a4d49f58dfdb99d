"""Small real media files, generated in memory for the media tests (no binary fixtures in the repo)."""

from __future__ import annotations

import io
import math
import wave
from fractions import Fraction

import av
import numpy as np
from PIL import Image

SAMPLE_RATE = 16_000


def gradient(width: int = 64, height: int = 48, *, mode: str = "RGB") -> Image.Image:
    """A colourful gradient (smooth, so it survives lossy codecs recognisably)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    return img if mode == "RGB" else img.convert(mode)


def image_bytes(fmt: str, width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    gradient(width, height).save(out, fmt)
    return out.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    out = io.BytesIO()
    images = [gradient(32, 24).rotate(90 * i) for i in range(frames)]
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def wav_bytes(seconds: float = 1.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(_tone(seconds).tobytes())
    return out.getvalue()


def audio_bytes(
    container: str, codec: str, *, seconds: float = 1.0, rate: int = 48_000, **opts: str
) -> bytes:
    """Encode a mono tone with PyAV (mp3, ogg/opus, flac, m4a/aac, adts)."""
    out = io.BytesIO()
    with av.open(out, "w", format=container, options=opts) as c:
        stream = c.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        samples = _tone(seconds, rate).astype(np.float32) / 32768.0
        formats = stream.codec_context.codec.audio_formats
        assert formats
        fmt = formats[0].name
        frame_size = 1152
        for start in range(0, len(samples), frame_size):
            chunk = samples[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            resampled = av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame)
            for f in resampled:
                c.mux(stream.encode(f))
        c.mux(stream.encode(None))
    return out.getvalue()


def webm_bytes(frames: int = 6) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as c:
        stream = c.add_stream("libvpx-vp9", rate=12)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            arr = np.asarray(gradient(64, 48).rotate(i * 10))
            c.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        c.mux(stream.encode(None))
    return out.getvalue()


def _tone(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * math.pi * 440 * t) * 12_000).astype(np.int16)


def top_level_boxes(mp4: bytes) -> list[bytes]:
    """The ISO-BMFF top-level box types in file order."""
    boxes, pos = [], 0
    while pos + 8 <= len(mp4):
        size = int.from_bytes(mp4[pos : pos + 4], "big")
        kind = mp4[pos + 4 : pos + 8]
        if size == 1:
            size = int.from_bytes(mp4[pos + 8 : pos + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes
