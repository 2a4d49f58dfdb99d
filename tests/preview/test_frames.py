from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio402.backends.preview.frames import BadgeOverlay, Box, YuvKeyframe, crossfade, new_frame, plane_view
from studio402.backends.preview.motion import OVERSCAN, Move, ease, plan_camera, transition_cameras
from studio402.backends.preview.stylize import CURATED_STYLES, collage, style_for
from studio402.media.video import to_yuv420p


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("anchored", [False, True])
def test_camera_boxes_stay_inside_the_keyframe(seed: int, anchored: bool) -> None:
    camera = plan_camera(seed, anchored_start=anchored)
    kw, kh = 1472, 828
    for i in range(25):
        box = camera.box(i / 24, kw, kh)
        assert -1e-6 <= box.left < box.right <= kw + 1e-6
        assert -1e-6 <= box.top < box.bottom <= kh + 1e-6
        assert box.right - box.left >= kw / OVERSCAN - 1e-6  # never enlarges pixels


def test_anchored_camera_starts_on_the_whole_keyframe() -> None:
    box = plan_camera(3, anchored_start=True).box(0.0, 200, 100)
    assert (box.left, box.top, box.right, box.bottom) == (0.0, 0.0, 200.0, 100.0)


def test_all_moves_are_reachable_from_seeds() -> None:
    cameras = {plan_camera(seed) for seed in range(len(Move))}
    assert len(cameras) == len(Move)


def test_transition_ends_on_the_whole_last_keyframe() -> None:
    _, last = transition_cameras()
    box = last.box(1.0, 300, 200)
    assert (box.left, box.top, box.right, box.bottom) == (0.0, 0.0, 300.0, 200.0)


def test_ease_is_monotonic_and_pinned() -> None:
    values = [ease(i / 50) for i in range(51)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


def test_keyframe_cut_scales_the_box_into_the_frame() -> None:
    key = Image.new("RGB", (200, 100), (0, 0, 0))
    key.paste((255, 255, 255), (100, 0, 200, 100))  # right half white
    source = YuvKeyframe(key)
    frame = new_frame(64, 32)
    source.cut(Box(100, 0, 200, 100), frame)  # only the white half
    assert plane_view(frame, 0).min() > 230
    source.cut(Box(0, 0, 200, 100), frame)  # the whole keyframe
    luma = plane_view(frame, 0)
    assert luma[:, :28].max() < 30 and luma[:, 36:].min() > 230


def test_keyframe_needs_even_size() -> None:
    with pytest.raises(ValueError):
        YuvKeyframe(Image.new("RGB", (201, 100)))


def test_crossfade_blends_planes() -> None:
    a = to_yuv420p(np.zeros((16, 16, 3), np.uint8))
    b = to_yuv420p(np.full((16, 16, 3), 255, np.uint8))
    y0, y1 = int(plane_view(a, 0)[0, 0]), int(plane_view(b, 0)[0, 0])
    crossfade(a, b, 0.5)
    assert abs(int(plane_view(a, 0)[0, 0]) - (y0 + y1) / 2) <= 1
    crossfade(a, b, 1.0)
    assert int(plane_view(a, 0)[0, 0]) == y1


def test_badge_overlay_touches_only_the_corner() -> None:
    frame = to_yuv420p(np.full((180, 320, 3), 128, np.uint8))
    before = [plane_view(frame, i).copy() for i in range(3)]
    BadgeOverlay(320, 180).apply(frame)
    changed = np.nonzero(plane_view(frame, 0) != before[0])
    assert len(changed[0]) > 0
    assert changed[0].min() > 180 * 0.7 and changed[1].min() > 320 * 0.6


def test_style_choice_is_deterministic_and_curated() -> None:
    assert style_for(0) == style_for(len(CURATED_STYLES))
    assert {style_for(s) for s in range(100)} == set(CURATED_STYLES)


def test_collage_tiles_sources_in_a_grid() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    out = np.asarray(collage([Image.new("RGB", (10, 10), c) for c in colours], 100, 100))
    assert tuple(out[25, 25]) == colours[0] and tuple(out[25, 75]) == colours[1]
    assert tuple(out[75, 50]) == colours[2]  # the last row's single cell spans the width
