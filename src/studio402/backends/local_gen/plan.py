"""From a catalog request to a generation Plan, and what a local model cannot do (refused before payment).

Sizes: the model generates at most `max_pixels` (its native area) with the request's aspect ratio, rounded to
its size multiple; the frames are then resized to exactly the requested size. Duration becomes frames at the
model's fps, as the model counts them (frame_step * k + 1, e.g. Wan: 81 frames = 5 s at 16 fps)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from studio402.backends.base import Ask, BackendJob, MediaInput
from studio402.backends.dimensions import geometry
from studio402.backends.local_gen.families import Family, PipelineKind
from studio402.backends.local_gen.messages import Plan
from studio402.backends.local_gen.options import LocalOptions
from studio402.catalog import Route
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind

# Media fields holding the first / last frame of an image-to-video request, per route family.
FIRST_FRAME = ("image", "input_reference")
LAST_FRAME = ("lastFrame", "last_image")
_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}


def generation_size(width: int, height: int, family: Family, max_pixels: int) -> tuple[int, int]:
    """The size the model renders: the requested aspect within `max_pixels`, in multiples of the family's."""
    scale = math.sqrt(max_pixels / (width * height))
    m = family.multiple
    snap = math.floor if scale < 1 else round  # scaled down: stay within the model's area
    scale = min(1.0, scale)
    return max(m, snap(width * scale / m) * m), max(m, snap(height * scale / m) * m)


def frame_count(duration_s: float, fps: int, step: int) -> int:
    """Frames for `duration_s` at `fps`, as the model counts them: step * k + 1 (at least one step)."""
    return max(1, round(duration_s * fps / step)) * step + 1


def _frames(facts: Sequence[InputFacts | MediaInput]) -> tuple[list[int], list[int]]:
    """Indexes of the first-frame and last-frame images among `facts` (Seedance `urls`: first, then last)."""
    first, last = [], []
    for i, f in enumerate(facts):
        if f.kind is not MediaKind.IMAGE:
            continue
        if f.loc[0] in FIRST_FRAME or (f.loc[0] == "urls" and f.loc[-1] == 0):
            first.append(i)
        elif f.loc[0] in LAST_FRAME or (f.loc[0] == "urls" and f.loc[-1] == 1):
            last.append(i)
    return first, last


def refusal(ask: Ask, kind: PipelineKind, family: Family) -> str | None:
    """Why this local model cannot serve `ask`, or None. Nothing is silently dropped from a request."""
    p = ask.params
    if any(f.kind is not MediaKind.IMAGE for f in ask.inputs):
        return "takes image inputs only (no audio or video inputs)"
    if p.get("generate_audio") is True:
        return "makes no audio"
    if p.get("multiShots") is True:
        return "makes single-shot videos only"
    if p.get("background") == "transparent":
        return "makes no transparent images"
    negative = p.get("negativePrompt") or p.get("negative_prompt")
    if negative and not family.negative_prompt:
        return "takes no negative prompt"
    if kind.video:
        return _video_refusal(ask, kind, family)
    images = ask.inputs_at("images")
    if len(images) > 1:
        return "edits one image at a time"
    if kind is PipelineKind.IMAGE_TO_IMAGE and not images:
        return "only edits images (image-to-image)"
    return None


def _video_refusal(ask: Ask, kind: PipelineKind, family: Family) -> str | None:
    if ask.inputs_at("referenceImages"):
        return "takes no reference images (first and last frames only)"
    first, last = _frames(ask.inputs)
    if len(first) + len(last) != len([f for f in ask.inputs if f.kind is MediaKind.IMAGE]):
        return "takes a first frame and a last frame only"
    if kind is PipelineKind.TEXT_TO_VIDEO and (first or last):
        return "is text-to-video (no first or last frame)"
    if kind is PipelineKind.IMAGE_TO_VIDEO and not first:
        return "is image-to-video: needs a first frame"
    if last and not family.last_frame:
        return "takes no last frame"
    return None


def build_plan(job: BackendJob, route: Route, options: LocalOptions, family: Family) -> Plan:
    """The generation a (checked) job asks for, with this model's steps, guidance, size and frame rules."""
    p = job.params
    geo = geometry(route, p)
    width, height = generation_size(geo.width, geo.height, family, options.max_pixels or family.max_pixels)
    image = last = None
    frames = fps = 0
    if options.pipeline.video:
        fps = options.fps or family.fps
        frames = frame_count(geo.duration_s, fps, family.frame_step)
        first_i, last_i = _frames(job.inputs)
        image = job.inputs[first_i[0]].data if first_i else None
        last = job.inputs[last_i[0]].data if last_i else None
    else:
        sources = job.inputs_at("images")
        image = sources[0].data if sources else None
    negative = p.get("negativePrompt") or p.get("negative_prompt")
    return Plan(
        job_id=job.id,
        prompt=str(p.get("prompt") or ""),
        negative_prompt=str(negative) if negative else None,
        seed=job.seed,
        steps=options.steps or family.steps,
        guidance_scale=options.guidance_scale if options.guidance_scale is not None else family.guidance,
        width=width,
        height=height,
        out_width=geo.width,
        out_height=geo.height,
        num_frames=frames,
        fps=fps,
        image=image,
        last_image=last,
        strength=options.strength,
        image_format=_FORMATS.get(str(p.get("output_format", "png")), "png"),
    )
