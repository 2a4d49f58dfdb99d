from __future__ import annotations

import numpy as np
import pytest

from studio402.backends.preview.compose import compose_image, compose_rgba, make_scene
from studio402.backends.preview.palette import Mood, prompt_hue


@pytest.mark.parametrize(("width", "height"), [(64, 64), (333, 97), (97, 333), (16, 16), (4096, 64)])
def test_exact_size_rgb(width: int, height: int) -> None:
    img = compose_image("a lighthouse", 1, width, height)
    assert img.size == (width, height) and img.mode == "RGB"


def test_same_prompt_and_seed_same_pixels() -> None:
    a = compose_image("a red fox in the snow", 7, 120, 80)
    b = compose_image("a red fox in the snow", 7, 120, 80)
    assert a.tobytes() == b.tobytes()


def test_prompt_and_seed_both_change_the_picture() -> None:
    base = np.asarray(compose_image("a red fox in the snow", 7, 120, 80), np.int16)
    other_prompt = np.asarray(compose_image("a blue whale", 7, 120, 80), np.int16)
    other_seed = np.asarray(compose_image("a red fox in the snow", 8, 120, 80), np.int16)
    assert np.abs(base - other_prompt).mean() > 5
    assert np.abs(base - other_seed).mean() > 5


def test_picture_is_not_flat() -> None:
    arr = np.asarray(compose_image("mountains at dusk", 3, 200, 120), np.float32)
    assert arr.std() > 10


def test_badge_is_optional_and_only_in_the_corner() -> None:
    with_badge = np.asarray(compose_image("x", 1, 320, 180), np.int16)
    without = np.asarray(compose_image("x", 1, 320, 180, label=False), np.int16)
    diff = np.abs(with_badge - without).sum(axis=2)
    ys, xs = np.nonzero(diff)
    assert len(ys) > 0
    assert ys.min() > 180 * 0.7 and xs.min() > 320 * 0.6  # bottom-right only


def test_rgba_has_a_transparent_sky_and_opaque_ground() -> None:
    img = compose_rgba("hills", 5, 160, 120, label=False)
    alpha = np.asarray(img.getchannel("A"))
    assert img.mode == "RGBA"
    assert alpha[0].mean() < 128  # the top row is mostly sky
    assert alpha[-1].min() == 255  # the bottom row is ground


def test_colour_words_steer_the_hue() -> None:
    hue, mood = prompt_hue("a red fire", b"\x00\x00")
    assert hue < 15 or hue > 350
    assert mood is Mood.GLOW
    assert prompt_hue("a quiet night", b"\x00\x00")[1] is Mood.NIGHT
    # No colour word: the hue comes from the prompt's hash.
    assert prompt_hue("a teapot", b"\x80\x00") == (180.0, None)


def test_night_prompts_are_darker_than_snowy_ones() -> None:
    night = np.asarray(compose_image("night", 1, 96, 96), np.float32).mean()
    snow = np.asarray(compose_image("snow", 1, 96, 96), np.float32).mean()
    assert night < snow


def test_scene_does_not_depend_on_the_output_size() -> None:
    # The same scene painted at two sizes looks alike once scaled to the same size.
    small = compose_image("a castle", 2, 100, 100, label=False)
    large = compose_image("a castle", 2, 400, 400, label=False).resize((100, 100))
    assert np.abs(np.asarray(small, np.int16) - np.asarray(large, np.int16)).mean() < 6
    assert len(make_scene("a castle", 2).ridges) >= 3
