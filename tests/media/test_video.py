from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from studio402.errors import MediaError
from studio402.media.image import probe_image
from studio402.media.video import encode_mp4, probe_audio, probe_video, thumbnail
from tests.media import samples

W, H = 64, 48


def _frames(count: int) -> list[np.ndarray]:
    base = np.asarray(samples.gradient(W, H))
    return [np.roll(base, i * 2, axis=1) for i in range(count)]


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return encode_mp4(_frames(12), width=W, height=H, fps=24, metadata={"studio402:backend": "preview"})


def test_encoded_video_probes_as_requested(mp4: bytes) -> None:
    info = probe_video(mp4, decode_all=True)
    assert (info.mime, info.width, info.height, info.codec, info.pix_fmt) == (
        "video/mp4",
        W,
        H,
        "h264",
        "yuv420p",
    )
    assert info.frames == 12 and info.fps == 24.0
    assert abs(info.duration_s - 0.5) <= 1 / 24
    assert info.has_audio is False


def test_h264_high_profile_bt709(mp4: bytes) -> None:
    with av.open(io.BytesIO(mp4), "r") as c:
        ctx = c.streams.video[0].codec_context
        assert ctx.profile == "High"
        frame = next(c.decode(video=0))
        assert frame.colorspace == 1  # BT.709, as tagged


def test_moov_comes_before_mdat(mp4: bytes) -> None:
    boxes = samples.top_level_boxes(mp4)
    assert boxes[0] == b"ftyp"
    assert boxes.index(b"moov") < boxes.index(b"mdat")


def test_metadata_is_stored(mp4: bytes) -> None:
    with av.open(io.BytesIO(mp4), "r") as c:
        assert c.metadata["studio402:backend"] == "preview"


def test_pil_images_and_pyav_frames_are_accepted() -> None:
    frames: list[object] = [samples.gradient(W, H), av.VideoFrame.from_ndarray(_frames(1)[0], format="rgb24")]
    frames.append(samples.gradient(W, H, mode="RGBA"))
    data = encode_mp4(frames, width=W, height=H, fps=10)  # type: ignore[arg-type]  # mixed list on purpose
    assert probe_video(data, decode_all=True).frames == 3


def test_non_contiguous_arrays_are_accepted() -> None:
    wide = np.zeros((H, W * 2, 3), np.uint8)
    data = encode_mp4([wide[:, ::2]], width=W, height=H, fps=10)
    assert probe_video(data).frames == 1


def test_colours_survive_encoding() -> None:
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 0] = 220
    data = encode_mp4([red] * 3, width=W, height=H, fps=10)
    with av.open(io.BytesIO(data), "r") as c:
        decoded = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(decoded - red).mean() < 4


def test_ntsc_rates_are_exact() -> None:
    data = encode_mp4(_frames(6), width=W, height=H, fps=Fraction(30000, 1001))
    info = probe_video(data)
    assert abs(info.fps - 29.97) < 0.01 and info.frames == 6


@pytest.mark.parametrize(("width", "height"), [(63, 48), (64, 47), (0, 48), (10_000, 48)])
def test_odd_or_absurd_dimensions_are_refused(width: int, height: int) -> None:
    with pytest.raises(MediaError) as err:
        encode_mp4(_frames(1), width=width, height=height, fps=24)
    assert err.value.code == "invalid_dimensions"


def test_fps_must_be_positive() -> None:
    with pytest.raises(MediaError) as err:
        encode_mp4(_frames(1), width=W, height=H, fps=0)
    assert err.value.code == "invalid_dimensions"


def test_frames_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(MediaError) as err:
        encode_mp4([np.zeros((H, W + 2, 3), np.uint8)], width=W, height=H, fps=24)
    assert err.value.code == "invalid_video"


def test_no_frames_is_refused() -> None:
    with pytest.raises(MediaError) as err:
        encode_mp4([], width=W, height=H, fps=24)
    assert err.value.code == "invalid_video"


@pytest.mark.parametrize("keep", [0.95, 0.7, 0.5, 0.2, 0.05])
def test_truncated_mp4_is_corrupt(mp4: bytes, keep: float) -> None:
    with pytest.raises(MediaError) as err:
        probe_video(mp4[: int(len(mp4) * keep)])
    assert err.value.code == "media_corrupt"


def test_truncated_mp4_without_faststart_is_corrupt() -> None:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:  # moov written last
        stream = c.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for arr in _frames(6):
            c.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        c.mux(stream.encode(None))
    data = out.getvalue()
    assert probe_video(data).frames == 6
    with pytest.raises(MediaError) as err:
        probe_video(data[: len(data) - 40])
    assert err.value.code == "media_corrupt"


def test_webm_is_probed() -> None:
    info = probe_video(samples.webm_bytes(frames=6), decode_all=True)
    assert (info.mime, info.codec, info.width, info.height) == ("video/webm", "vp9", 64, 48)
    assert abs(info.duration_s - 0.5) < 0.1


@pytest.mark.parametrize("data", [b"plain text", samples.image_bytes("PNG")])
def test_non_videos_are_unsupported(data: bytes) -> None:
    with pytest.raises(MediaError) as err:
        probe_video(data)
    assert err.value.code == "media_unsupported"


def test_video_pixel_cap(mp4: bytes) -> None:
    with pytest.raises(MediaError) as err:
        probe_video(mp4, max_pixels=100)
    assert err.value.code == "media_too_large"


@pytest.mark.parametrize(("fmt", "mime"), [("webp", "image/webp"), ("jpeg", "image/jpeg")])
def test_thumbnail_is_the_first_frame_scaled_down(fmt: str, mime: str) -> None:
    frames = _frames(4)
    frames[0] = np.full((H, W, 3), (30, 200, 60), np.uint8)
    data = encode_mp4(frames, width=W, height=H, fps=24)
    thumb = thumbnail(data, fmt=fmt, max_side=32)  # type: ignore[arg-type]  # parametrised literal
    info = probe_image(thumb)
    assert info.mime == mime and max(info.width, info.height) == 32 and info.width == 32
    with Image.open(io.BytesIO(thumb)) as img:
        pixel = np.asarray(img.convert("RGB"))[12, 16].astype(int)
    assert np.abs(pixel - (30, 200, 60)).max() < 20


def test_thumbnail_of_garbage_is_corrupt() -> None:
    with pytest.raises(MediaError) as err:
        thumbnail(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    assert err.value.code == "media_corrupt"


def test_video_with_a_soundtrack() -> None:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        video = c.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = c.add_stream("aac", rate=48_000)
        audio.layout = "mono"
        for i, arr in enumerate(_frames(24)):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 24)
            c.mux(video.encode(frame))
        c.mux(video.encode(None))
        for start in range(0, 48_000, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48_000, start, Fraction(1, 48_000)
            c.mux(audio.encode(af))
        c.mux(audio.encode(None))
    data = out.getvalue()
    assert probe_video(data).has_audio is True
    sound = probe_audio(data)
    assert (sound.mime, sound.codec, sound.sample_rate, sound.channels) == ("video/mp4", "aac", 48_000, 1)
