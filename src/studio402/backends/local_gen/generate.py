"""Inside a GPU worker: load one pipeline, run plans on it step by step, encode what it made.

Runs only in the worker process (torch and diffusers are imported here, never by the server). Edits use
img2img on the same weights (`AutoPipelineForImage2Image.from_pipe`: no second copy in memory)."""

from __future__ import annotations

import gc
import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from studio402.backends.local_gen.families import PipelineKind
from studio402.backends.local_gen.messages import MediaFile, Plan
from studio402.media.image import encode_image, load_image
from studio402.media.video import encode_mp4, thumbnail

THUMBNAIL_SIDE = 512


class Interrupted(Exception):
    """The job was canceled between two denoising steps."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process loads, and where (the index picks its GPU)."""

    source: str  # folder or hub id
    pipeline: PipelineKind
    index: int = 0
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    cache_dir: str | None = None
    label: str = "diffusers"  # provenance written into the media metadata


def pick_device(torch: Any, wanted: str, index: int) -> str:
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and torch.cuda.device_count() > 1:
        return f"cuda:{index % torch.cuda.device_count()}"  # N workers spread over the machine's GPUs
    return wanted


def pick_dtype(torch: Any, wanted: str, device: str) -> Any:
    if wanted == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, wanted)


class LoadedPipeline:
    def __init__(self, spec: WorkerSpec) -> None:
        import torch

        diffusers: Any = importlib.import_module("diffusers")  # untyped library: used through Any
        self._torch = torch
        self.spec = spec
        self.device = pick_device(torch, spec.device, spec.index)
        loader = (
            diffusers.AutoPipelineForImage2Image
            if spec.pipeline is PipelineKind.IMAGE_TO_IMAGE
            else diffusers.DiffusionPipeline
        )
        pipe = loader.from_pretrained(
            spec.source,
            dtype=pick_dtype(torch, spec.dtype, self.device),
            local_files_only=True,
            cache_dir=spec.cache_dir,
        )
        self.pipe = _place(pipe, spec.offload, self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self._img2img: Any = None

    @property
    def name(self) -> str:
        return type(self.pipe).__name__

    def run(self, plan: Plan, progress: Callable[[int, int], None], canceled: Callable[[], bool]) -> Any:
        """The pipeline's output for `plan` (PIL images, or video frames as floats in [0, 1])."""
        pipe = self._pipe_for(plan)
        total = plan.steps

        def on_step_end(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            progress(step + 1, int(getattr(p, "num_timesteps", 0) or total))
            if canceled():
                p._interrupt = True  # pipelines skip their remaining steps
                raise Interrupted  # ... and we skip the VAE decode too
            return tensors

        kwargs = self._arguments(pipe, plan)
        kwargs["callback_on_step_end"] = on_step_end
        return pipe(**kwargs)

    def release(self) -> None:
        """Drop what a (failed) run left behind, GPU caches included."""
        gc.collect()
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def _pipe_for(self, plan: Plan) -> Any:
        if plan.video or plan.image is None or self.spec.pipeline is PipelineKind.IMAGE_TO_IMAGE:
            return self.pipe
        if self._img2img is None:  # an edit on text-to-image weights: the same modules, another pipeline
            diffusers: Any = importlib.import_module("diffusers")
            self._img2img = diffusers.AutoPipelineForImage2Image.from_pipe(self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _arguments(self, pipe: Any, plan: Plan) -> dict[str, Any]:
        accepted = inspect.signature(pipe.__call__).parameters
        generator = self._torch.Generator(device="cpu").manual_seed(plan.seed)
        kwargs: dict[str, Any] = {
            "prompt": plan.prompt,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance_scale,
            "generator": generator,
            "height": plan.height,
            "width": plan.width,
        }
        if plan.negative_prompt and "negative_prompt" in accepted:
            kwargs["negative_prompt"] = plan.negative_prompt
        if plan.video:
            kwargs.update(num_frames=plan.num_frames, output_type="np")
            if "frame_rate" in accepted:  # LTX conditions on it
                kwargs["frame_rate"] = plan.fps
        else:
            kwargs["output_type"] = "pil"
        if plan.image is not None:
            kwargs["image"] = _fitted(plan.image, plan.width, plan.height)
            if "strength" in accepted:  # img2img: strength x steps denoising steps run; at least one
                kwargs["strength"] = plan.strength
                kwargs["num_inference_steps"] = max(plan.steps, math.ceil(1 / plan.strength))
        if plan.last_image is not None:
            kwargs["last_image"] = _fitted(plan.last_image, plan.width, plan.height)
        return kwargs


def _place(pipe: Any, offload: str, device: str) -> Any:
    if offload == "model":  # submodules move to the GPU only while they run (less VRAM, a bit slower)
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":  # layer by layer: least VRAM, much slower
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def _fitted(data: bytes, width: int, height: int) -> Image.Image:
    """A conditioning image at the generation size (cropped to its aspect ratio, then scaled)."""
    from PIL import ImageOps

    img = load_image(data).convert("RGB")
    return ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS)


def encode(plan: Plan, output: Any, label: str) -> tuple[MediaFile, ...]:
    """The pipeline's output as our media: an image in the requested format, or H.264 MP4 + thumbnail,
    at exactly the requested size."""
    meta = {"studio402:backend": label, "studio402:generator": "open-weight model (diffusers)"}
    if not plan.video:
        img = output.images[0].resize((plan.out_width, plan.out_height), Image.Resampling.LANCZOS)
        fmt = plan.image_format
        return (MediaFile(encode_image(img, fmt, metadata=meta), f"image/{fmt}"),)  # type: ignore[arg-type]
    frames = np.asarray(output.frames[0])  # (F, H, W, 3) floats in [0, 1]
    pixels = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    sized = (
        Image.fromarray(f).resize((plan.out_width, plan.out_height), Image.Resampling.LANCZOS) for f in pixels
    )
    mp4 = encode_mp4(sized, width=plan.out_width, height=plan.out_height, fps=plan.fps, metadata=meta)
    thumb = thumbnail(mp4, fmt="webp", max_side=THUMBNAIL_SIDE, metadata=meta)
    return MediaFile(mp4, "video/mp4"), MediaFile(thumb, "image/webp", role="thumbnail")
