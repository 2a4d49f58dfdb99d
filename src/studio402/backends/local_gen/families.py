"""What each diffusers pipeline class needs from a request, known without importing torch or diffusers.

The class comes from the model folder's `model_index.json` (`_class_name`), so `backends check` and the
pre-payment refusal read one small JSON file, never the weights. Frame steps and size multiples are the real
models' constraints (VAE temporal/spatial compression x patch size)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class PipelineKind(StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_IMAGE = "image-to-image"
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"

    @property
    def video(self) -> bool:
        return self in (PipelineKind.TEXT_TO_VIDEO, PipelineKind.IMAGE_TO_VIDEO)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kinds: frozenset[PipelineKind]  # what a folder of this class can serve
    multiple: int  # width and height are multiples of this
    steps: int  # default inference steps (distilled models need few)
    guidance: float  # default guidance scale (0: distilled, no CFG)
    fps: int = 0  # video: the model's native frame rate
    frame_step: int = 0  # video: frames = frame_step * k + 1
    max_pixels: int = 1024 * 1024  # the area it generates at; larger requests are upscaled to their size
    negative_prompt: bool = True
    last_frame: bool = False  # video: takes a last frame (first/last-frame interpolation)


_IMAGE = frozenset({PipelineKind.TEXT_TO_IMAGE, PipelineKind.IMAGE_TO_IMAGE})
_T2V = frozenset({PipelineKind.TEXT_TO_VIDEO})
_I2V = frozenset({PipelineKind.IMAGE_TO_VIDEO})

FAMILIES: dict[str, Family] = {
    # SD-Turbo (512 px, 1-4 steps, no CFG); SD 1.5-class checkpoints set steps/guidance in options.
    "StableDiffusionPipeline": Family("sd", _IMAGE, 8, 4, 0.0, max_pixels=512 * 512),
    # SDXL-Turbo (512 px, 1-4 steps, no CFG).
    "StableDiffusionXLPipeline": Family("sdxl", _IMAGE, 8, 4, 0.0, max_pixels=512 * 512),
    # FLUX.1-schnell (4 steps, no CFG, no negative prompt).
    "FluxPipeline": Family("flux", _IMAGE, 16, 4, 0.0, negative_prompt=False),
    # Wan 2.1 / 2.2 (16 fps, 4k+1 frames, 480p-720p).
    "WanPipeline": Family("wan", _T2V, 16, 30, 5.0, fps=16, frame_step=4, max_pixels=832 * 480),
    "WanImageToVideoPipeline": Family(
        "wan", _I2V, 16, 30, 5.0, fps=16, frame_step=4, max_pixels=832 * 480, last_frame=True
    ),
    # LTX-Video (24 fps, 8k+1 frames, multiples of 32).
    "LTXPipeline": Family("ltx", _T2V, 32, 30, 3.0, fps=24, frame_step=8, max_pixels=704 * 480),
    "LTXImageToVideoPipeline": Family("ltx", _I2V, 32, 30, 3.0, fps=24, frame_step=8, max_pixels=704 * 480),
    # CogVideoX (8 fps, 4k+1 frames: 49 = 6 s, 720x480).
    "CogVideoXPipeline": Family("cogvideox", _T2V, 16, 50, 6.0, fps=8, frame_step=4, max_pixels=720 * 480),
    "CogVideoXImageToVideoPipeline": Family(
        "cogvideox", _I2V, 16, 50, 6.0, fps=8, frame_step=4, max_pixels=720 * 480
    ),
}


def model_class(folder: Path) -> str | None:
    """The pipeline class a model folder declares, or None when it has no readable `model_index.json`."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return None
    name = index.get("_class_name") if isinstance(index, dict) else None
    return name if isinstance(name, str) else None
