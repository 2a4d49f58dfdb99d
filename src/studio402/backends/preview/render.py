"""Rendering entry points of the preview backend (synchronous; the adapter runs them in a worker thread).

Outputs are real media that honour the request exactly (size, duration, fps, format), are deterministic
(same inputs, same pixels; images also the same bytes, while x264 output is not bit-reproducible, see
media/video.py), and say what they are: a visible "preview" badge and provenance metadata. They are
procedural compositions and style transfer, never presented as AI generation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av
from PIL import Image

from studio402.backends.preview.badge import draw_badge
from studio402.backends.preview.compose import compose_image, compose_rgba
from studio402.backends.preview.frames import BadgeOverlay, YuvKeyframe, crossfade, new_frame
from studio402.backends.preview.motion import OVERSCAN, Camera, plan_camera, transition_cameras
from studio402.backends.preview.stylize import STYLE_MAX_SIDE, collage, fit, stylise, to_rgb
from studio402.errors import MediaError
from studio402.media.image import ImageFormat, encode_image
from studio402.media.video import X264Settings, encode_mp4, thumbnail

BACKEND = "preview"
GENERATOR = "procedural composition + style transfer (preview, not AI generation)"
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
MAX_VIDEO_FRAMES = 24 * 60
THUMBNAIL_SIDE = 512
EDIT_STYLE_SIDE = 768  # edits keep more detail than video keyframes; the network cost grows with pixels
EDIT_STRENGTH = 0.75  # how much of the style replaces the source photo
EDIT_PROMPT_TINT = 0.12  # how much of the prompt's composition shows through an edit
VIDEO_X264 = X264Settings()


@dataclass(frozen=True, slots=True)
class RenderedVideo:
    mp4: bytes
    thumbnail_webp: bytes
    frames: int


def render_image(
    *,
    prompt: str,
    seed: int,
    width: int,
    height: int,
    fmt: ImageFormat,
    quality: int | None = None,
    sources: Sequence[Image.Image] = (),
    transparent: bool = False,
) -> bytes:
    """Text-to-image (a composition) or, with `sources`, an edit: the sources fitted and restyled."""
    _check_size(width, height)
    if sources:
        img = _edit(prompt, seed, width, height, sources, keep_alpha=transparent)
    elif transparent:
        img = compose_rgba(prompt, seed, width, height, label=False)
    else:
        img = compose_image(prompt, seed, width, height, label=False)
    meta = preview_metadata(seed, operation="edit" if sources else "generate")
    return encode_image(draw_badge(img), fmt, quality=quality, metadata=meta)


def render_video(
    *,
    prompt: str,
    seed: int,
    width: int,
    height: int,
    duration_s: float,
    fps: float,
    first_frame: Image.Image | None = None,
    last_frame: Image.Image | None = None,
) -> RenderedVideo:
    """A camera move over a keyframe: composed (text-to-video) or the given first frame (image-to-video).

    With `last_frame` the camera pushes into the first keyframe while dissolving into the last one, which
    ends on its full view. The video has exactly round(duration_s * fps) frames.
    """
    count = frame_count(duration_s, fps)
    frames = video_frames(
        prompt=prompt,
        seed=seed,
        width=width,
        height=height,
        count=count,
        first_frame=first_frame,
        last_frame=last_frame,
    )
    meta = preview_metadata(seed, operation="i2v" if first_frame is not None else "t2v")
    mp4 = encode_mp4(frames, width=width, height=height, fps=fps, metadata=meta, settings=VIDEO_X264)
    return RenderedVideo(
        mp4=mp4, thumbnail_webp=thumbnail(mp4, fmt="webp", max_side=THUMBNAIL_SIDE), frames=count
    )


def video_frames(
    *,
    prompt: str,
    seed: int,
    width: int,
    height: int,
    count: int,
    first_frame: Image.Image | None = None,
    last_frame: Image.Image | None = None,
) -> Iterator[av.VideoFrame]:
    """The yuv420p pictures of `render_video`, before encoding: the same request gives the same pixels."""
    _check_video(width, height, count)
    kw, kh = _even(width * OVERSCAN), _even(height * OVERSCAN)
    if first_frame is not None:
        start = fit(to_rgb(first_frame), kw, kh)
    else:
        start = _t2v_keyframe(prompt, seed, kw, kh)
    if last_frame is not None:
        end = fit(to_rgb(last_frame), kw, kh)
        return _transition_frames(start, end, width, height, count)
    camera = plan_camera(seed, anchored_start=first_frame is not None)
    return _camera_frames(start, camera, width, height, count)


def frame_count(duration_s: float, fps: float) -> int:
    """Frames in a video of this duration: round(duration_s * fps), the single rule everyone uses."""
    return round(duration_s * fps)


def preview_metadata(seed: int, *, operation: str) -> dict[str, str]:
    return {
        "studio402:backend": BACKEND,
        "studio402:generator": GENERATOR,
        "studio402:operation": operation,
        "studio402:seed": str(seed),
    }


def _edit(
    prompt: str, seed: int, width: int, height: int, sources: Sequence[Image.Image], *, keep_alpha: bool
) -> Image.Image:
    base = collage(sources, width, height)
    styled = stylise(to_rgb(base), seed, strength=EDIT_STRENGTH, max_side=EDIT_STYLE_SIDE)
    tinted = Image.blend(styled, compose_image(prompt, seed, width, height, label=False), EDIT_PROMPT_TINT)
    if keep_alpha and base.mode == "RGBA":
        tinted.putalpha(base.getchannel("A"))
    return tinted


def _t2v_keyframe(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    # Compose and stylise at a small size, then scale up once: the style network dominates the cost.
    scale = min(1.0, STYLE_MAX_SIDE / max(width, height))
    small = compose_image(
        prompt, seed, max(1, round(width * scale)), max(1, round(height * scale)), label=False
    )
    styled = stylise(small, seed, strength=0.8, max_side=STYLE_MAX_SIDE)
    return styled.resize((width, height), Image.Resampling.BICUBIC)


def _camera_frames(
    key: Image.Image, camera: Camera, width: int, height: int, count: int
) -> Iterator[av.VideoFrame]:
    source = YuvKeyframe(key)
    overlay = BadgeOverlay(width, height)
    for i in range(count):
        frame = new_frame(width, height)
        source.cut(camera.box(_t(i, count), key.width, key.height), frame)
        overlay.apply(frame)
        yield frame


def _transition_frames(
    first: Image.Image, last: Image.Image, width: int, height: int, count: int
) -> Iterator[av.VideoFrame]:
    cam_a, cam_b = transition_cameras()
    src_a, src_b = YuvKeyframe(first), YuvKeyframe(last)
    overlay = BadgeOverlay(width, height)
    other = new_frame(width, height)  # scratch for the last keyframe while they dissolve
    for i in range(count):
        t = _t(i, count)
        frame = new_frame(width, height)
        weight = min(1.0, max(0.0, (t - 0.2) / 0.6))  # dissolve over the middle 60%
        if weight >= 1.0:  # dissolved: only the last keyframe shows
            src_b.cut(cam_b.box(t, last.width, last.height), frame)
        else:
            src_a.cut(cam_a.box(t, first.width, first.height), frame)
            if weight > 0.0:
                src_b.cut(cam_b.box(t, last.width, last.height), other)
                crossfade(frame, other, weight)
        overlay.apply(frame)
        yield frame


def _t(index: int, count: int) -> float:
    return index / (count - 1) if count > 1 else 0.0


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _check_size(width: int, height: int) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise MediaError(
            f"size {width}x{height} is outside {MIN_SIDE}..{MAX_SIDE} px per side / {MAX_PIXELS} px",
            code="invalid_dimensions",
        )


def _check_video(width: int, height: int, count: int) -> None:
    _check_size(width, height)
    if width % 2 or height % 2:
        raise MediaError(f"video size {width}x{height} must be even (yuv420p)", code="invalid_dimensions")
    if not 1 <= count <= MAX_VIDEO_FRAMES:
        raise MediaError(f"{count} frames requested (1..{MAX_VIDEO_FRAMES})", code="invalid_dimensions")
