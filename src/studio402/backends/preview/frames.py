"""Fast video frames from a still: cut a box out of a pre-converted keyframe and scale it, in YUV.

The keyframe is converted to BT.709 yuv420p once. Each output frame then costs three swscale calls on
zero-copy views of the planes (Y at full, U and V at half resolution), about a third of the work of scaling
RGB and converting every frame. Boxes are snapped to whole source pixels (swscale has no sub-pixel origin);
with the keyframe only ~15% larger than the output, that is under half an output pixel of error.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from numpy.typing import NDArray
from PIL import Image

from studio402.backends.preview.badge import badge
from studio402.media.video import to_yuv420p

U8 = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Box:
    """A region of the keyframe in pixels (floats: snapping happens per plane)."""

    left: float
    top: float
    right: float
    bottom: float


def plane_view(frame: av.VideoFrame, index: int) -> U8:
    """A writable numpy view of one plane, without the row padding."""
    plane = frame.planes[index]
    rows: U8 = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def new_frame(width: int, height: int) -> av.VideoFrame:
    return av.VideoFrame(width, height, "yuv420p")


class YuvKeyframe:
    """An RGB still (even size) held as yuv420p planes, from which boxes are cut into output frames.

    Not thread-safe (it keeps swscale contexts); use one per rendering thread.
    """

    def __init__(self, image: Image.Image) -> None:
        if image.width % 2 or image.height % 2:
            raise ValueError(f"keyframe size must be even, got {image.width}x{image.height}")
        frame = to_yuv420p(image)
        self.width, self.height = image.size
        self._planes = tuple(np.ascontiguousarray(plane_view(frame, i)) for i in range(3))
        self._scalers = (VideoReformatter(), VideoReformatter(), VideoReformatter())

    def cut(self, box: Box, out: av.VideoFrame) -> None:
        """Scale `box` of the keyframe into all three planes of `out`."""
        for index, (plane, scaler) in enumerate(zip(self._planes, self._scalers, strict=True)):
            div = 1 if index == 0 else 2
            src = _snap(plane, box, div)
            dst = plane_view(out, index)
            scaled = scaler.reformat(
                av.VideoFrame.from_numpy_buffer(src, "gray"),
                width=dst.shape[1],
                height=dst.shape[0],
                interpolation=Interpolation.BILINEAR,
                threads=1,  # a fresh context per zoom step: spawning a thread pool each time costs more
            )
            dst[...] = plane_view(scaled, 0)


def _snap(plane: U8, box: Box, div: int) -> U8:
    h, w = plane.shape
    x0 = min(max(0, round(box.left / div)), w - 1)
    y0 = min(max(0, round(box.top / div)), h - 1)
    x1 = min(max(x0 + 1, round(box.right / div)), w)
    y1 = min(max(y0 + 1, round(box.bottom / div)), h)
    return plane[y0:y1, x0:x1]


def crossfade(a: av.VideoFrame, b: av.VideoFrame, weight: float) -> None:
    """Blend `b` into `a` in place: weight 0 keeps `a`, 1 gives `b` (8-bit fixed point)."""
    w = int(round(weight * 256))
    if w <= 0:
        return
    for index in range(3):
        va, vb = plane_view(a, index), plane_view(b, index)
        if w >= 256:
            va[...] = vb
            continue
        mixed = va.astype(np.uint16) * np.uint16(256 - w)
        mixed += vb.astype(np.uint16) * np.uint16(w)
        mixed += np.uint16(128)
        va[...] = mixed >> 8


class BadgeOverlay:
    """The "preview" badge, converted to yuv420p once and alpha-blended into each frame's corner."""

    def __init__(self, width: int, height: int) -> None:
        patch, (self._x, self._y) = badge(width, height)
        pw, ph = patch.width + patch.width % 2, patch.height + patch.height % 2
        padded = Image.new("RGBA", (pw, ph), (0, 0, 0, 0))
        padded.paste(patch, (0, 0))
        yuv = to_yuv420p(padded.convert("RGB"))
        alpha = np.asarray(padded.getchannel("A"), np.float32) / 255.0
        half = alpha.reshape(ph // 2, 2, pw // 2, 2).mean(axis=(1, 3))
        self._layers: list[tuple[NDArray[np.float32], NDArray[np.float32]]] = []
        for index, a in enumerate((alpha, half, half)):
            self._layers.append((plane_view(yuv, index).astype(np.float32), a))

    def apply(self, frame: av.VideoFrame) -> None:
        for index, (colour, alpha) in enumerate(self._layers):
            div = 1 if index == 0 else 2
            dst = plane_view(frame, index)
            x, y = self._x // div, self._y // div
            region = dst[y : y + alpha.shape[0], x : x + alpha.shape[1]]
            c, a = colour[: region.shape[0], : region.shape[1]], alpha[: region.shape[0], : region.shape[1]]
            blended = region.astype(np.float32)
            blended += (c - blended) * a + np.float32(0.5)
            region[...] = blended.astype(np.uint8)
