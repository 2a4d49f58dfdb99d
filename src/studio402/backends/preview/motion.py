"""Camera moves over a keyframe (the "Ken Burns" effect), chosen deterministically from the seed.

The keyframe is `OVERSCAN` times the output size. Zoom 1 shows all of it (downscaled); zoom `OVERSCAN` shows
an output-sized window at 1:1, so no move ever enlarges pixels. Centres are fractions of the free room left
around the window, which keeps every box inside the keyframe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from studio402.backends.preview.frames import Box

OVERSCAN = 1.15


class Move(StrEnum):
    PUSH_IN = "push_in"
    PULL_OUT = "pull_out"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    RISE = "rise"


@dataclass(frozen=True, slots=True)
class Camera:
    zoom0: float
    zoom1: float
    start: tuple[float, float]  # centre at t=0, fractions of the free room (0.5 = centred)
    end: tuple[float, float]

    def box(self, t: float, width: int, height: int) -> Box:
        """The keyframe region shown at time `t` in [0, 1] for a keyframe of `width` x `height`."""
        s = ease(t)
        zoom = self.zoom0 + (self.zoom1 - self.zoom0) * s
        cw, ch = width / zoom, height / zoom
        fx = self.start[0] + (self.end[0] - self.start[0]) * s
        fy = self.start[1] + (self.end[1] - self.start[1]) * s
        left = fx * (width - cw)
        top = fy * (height - ch)
        return Box(left=left, top=top, right=left + cw, bottom=top + ch)


def ease(t: float) -> float:
    """Ease in and out, so moves start and stop gently."""
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, t)))


def plan_camera(seed: int, *, anchored_start: bool = False) -> Camera:
    """A move for text-to-video, or (anchored) one that starts on the whole keyframe, for image-to-video."""
    if anchored_start:
        drift = ((seed % 5) - 2) * 0.1
        return Camera(zoom0=1.0, zoom1=OVERSCAN, start=(0.5, 0.5), end=(0.5 + drift, 0.45))
    move = list(Move)[seed % len(Move)]
    z = OVERSCAN
    if move is Move.PUSH_IN:
        return Camera(zoom0=1.0, zoom1=z, start=(0.5, 0.5), end=(0.4 + 0.2 * ((seed >> 3) % 2), 0.4))
    if move is Move.PULL_OUT:
        return Camera(zoom0=z, zoom1=1.0, start=(0.5, 0.35), end=(0.5, 0.5))
    if move is Move.PAN_LEFT:
        return Camera(zoom0=z, zoom1=z, start=(1.0, 0.5), end=(0.0, 0.5))
    if move is Move.PAN_RIGHT:
        return Camera(zoom0=z, zoom1=z, start=(0.0, 0.5), end=(1.0, 0.5))
    return Camera(zoom0=z, zoom1=z * 0.97, start=(0.5, 1.0), end=(0.5, 0.0))


def transition_cameras() -> tuple[Camera, Camera]:
    """First-to-last-frame: push into the first keyframe while the last one pulls back to its full view."""
    z = OVERSCAN
    return (
        Camera(zoom0=1.0, zoom1=z, start=(0.5, 0.5), end=(0.5, 0.5)),
        Camera(zoom0=z, zoom1=1.0, start=(0.5, 0.5), end=(0.5, 0.5)),
    )
