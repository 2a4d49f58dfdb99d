from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from studio402.backends.preview.render import RenderedVideo, frame_count, render_video, video_frames
from studio402.backends.preview.stylize import fit
from studio402.errors import MediaError
from studio402.media.image import probe_image
from studio402.media.video import probe_video
from tests.media.samples import top_level_boxes

W, H = 160, 96


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data), "r") as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def _picture(colour: tuple[int, int, int], size: tuple[int, int] = (240, 150)) -> Image.Image:
    img = Image.new("RGB", size, colour)
    img.paste((255, 255, 255), (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2))
    return img


@pytest.fixture(scope="module")
def t2v() -> RenderedVideo:
    return render_video(prompt="a sunset over the sea", seed=3, width=W, height=H, duration_s=1.0, fps=12)


def test_text_to_video_honours_the_request(t2v: RenderedVideo) -> None:
    info = probe_video(t2v.mp4, decode_all=True)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (W, H, "h264", "yuv420p")
    assert info.frames == t2v.frames == 12
    assert abs(info.duration_s - 1.0) <= 1 / 12 and info.fps == 12.0
    boxes = top_level_boxes(t2v.mp4)
    assert boxes.index(b"moov") < boxes.index(b"mdat")


def test_the_video_moves(t2v: RenderedVideo) -> None:
    frames = _frames(t2v.mp4)
    assert np.abs(frames[0] - frames[-1]).mean() > 2


def test_thumbnail_is_a_small_webp(t2v: RenderedVideo) -> None:
    info = probe_image(t2v.thumbnail_webp)
    assert info.mime == "image/webp" and (info.width, info.height) == (W, H)  # never enlarged


def test_metadata_marks_the_preview(t2v: RenderedVideo) -> None:
    with av.open(io.BytesIO(t2v.mp4), "r") as c:
        assert c.metadata["studio402:backend"] == "preview"
        assert c.metadata["studio402:operation"] == "t2v"


@pytest.mark.parametrize("operation", ["t2v", "i2v", "interpolation"])
def test_same_request_same_pixels(operation: str) -> None:
    """The pictures, not the MP4 bytes: x264 is not bit-reproducible (media/video.py)."""
    first_frame = None if operation == "t2v" else _picture((30, 90, 200))
    last_frame = _picture((200, 60, 20)) if operation == "interpolation" else None

    def pixels(seed: int) -> list[bytes]:
        frames = video_frames(
            prompt="a sunset over the sea",
            seed=seed,
            width=W,
            height=H,
            count=12,
            first_frame=first_frame,
            last_frame=last_frame,
        )
        return [frame.to_ndarray().tobytes() for frame in frames]  # the visible yuv420p planes

    first = pixels(3)
    assert len(first) == 12 and pixels(3) == first
    if operation != "interpolation":  # the seed picks the camera move (and the picture, for t2v)
        assert pixels(4) != first


def test_other_prompt_other_video(t2v: RenderedVideo) -> None:
    other = render_video(prompt="a forest at noon", seed=3, width=W, height=H, duration_s=1.0, fps=12)
    assert np.abs(_frames(other.mp4)[0] - _frames(t2v.mp4)[0]).mean() > 5


@pytest.mark.parametrize(
    ("duration", "fps", "expected"), [(0.5, 24, 12), (2.0, 8, 16), (1.0, 30, 30), (0.04, 25, 1)]
)
def test_exact_frame_counts(duration: float, fps: int, expected: int) -> None:
    assert frame_count(duration, fps) == expected
    video = render_video(prompt="p", seed=1, width=64, height=48, duration_s=duration, fps=fps)
    info = probe_video(video.mp4, decode_all=True)
    assert video.frames == info.frames == expected
    assert abs(info.duration_s - duration) <= 1 / fps + 1e-6


def test_every_camera_move_renders() -> None:
    for seed in range(5):  # one per move
        video = render_video(prompt="p", seed=seed, width=64, height=48, duration_s=0.5, fps=8)
        assert probe_video(video.mp4, decode_all=True).frames == 4


def test_image_to_video_starts_on_the_given_image() -> None:
    first = _picture((20, 120, 200))
    video = render_video(prompt="p", seed=5, width=W, height=H, duration_s=1.0, fps=10, first_frame=first)
    frames = _frames(video.mp4)
    expected = np.asarray(fit(first, W, H), np.int16)
    assert len(frames) == 10
    # Compare away from the badge corner.
    assert np.abs(frames[0][: H // 2] - expected[: H // 2]).mean() < 6
    assert np.abs(frames[-1] - frames[0]).mean() > 1  # and then moves
    with av.open(io.BytesIO(video.mp4), "r") as c:
        assert c.metadata["studio402:operation"] == "i2v"


def test_first_to_last_frame_ends_on_the_last_image() -> None:
    first, last = _picture((200, 40, 40)), _picture((40, 200, 40), size=(100, 200))
    video = render_video(
        prompt="p", seed=5, width=W, height=H, duration_s=1.0, fps=12, first_frame=first, last_frame=last
    )
    frames = _frames(video.mp4)
    assert len(frames) == 12
    assert np.abs(frames[0][: H // 2] - np.asarray(fit(first, W, H), np.int16)[: H // 2]).mean() < 6
    assert np.abs(frames[-1][: H // 2] - np.asarray(fit(last, W, H), np.int16)[: H // 2]).mean() < 6
    middle = frames[6][: H // 2].mean(axis=(0, 1))
    assert 60 < middle[0] < 180 and 60 < middle[1] < 180  # a dissolve, halfway


def test_text_to_video_with_a_last_frame() -> None:
    last = _picture((40, 40, 200))
    video = render_video(prompt="p", seed=1, width=64, height=48, duration_s=0.5, fps=12, last_frame=last)
    frames = _frames(video.mp4)
    assert np.abs(frames[-1][:24] - np.asarray(fit(last, 64, 48), np.int16)[:24]).mean() < 8


@pytest.mark.parametrize(
    ("width", "height", "duration"), [(65, 48, 1.0), (64, 47, 1.0), (64, 48, 0.0), (64, 48, 600.0)]
)
def test_impossible_videos_are_refused(width: int, height: int, duration: float) -> None:
    with pytest.raises(MediaError) as err:
        render_video(prompt="p", seed=0, width=width, height=height, duration_s=duration, fps=24)
    assert err.value.code == "invalid_dimensions"


def test_720p_smoke() -> None:
    video = render_video(prompt="a city at night", seed=11, width=1280, height=720, duration_s=1.0, fps=24)
    info = probe_video(video.mp4)
    assert (info.width, info.height, info.frames, info.codec) == (1280, 720, 24, "h264")
    assert probe_image(video.thumbnail_webp).width == 512


def test_transparent_first_frame_is_flattened_onto_white() -> None:
    first = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    video = render_video(prompt="p", seed=5, width=64, height=48, duration_s=0.25, fps=8, first_frame=first)
    assert _frames(video.mp4)[0][:24].mean() > 240
