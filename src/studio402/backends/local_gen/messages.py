"""The typed messages between the backend (parent) and a GPU worker process, over one pipe each.

    parent -> worker   Plan (one job; the worker runs one at a time) | Shutdown
    worker -> parent   Ready | LoadFailed, then per job: Progress* then Done | Failed

Cancellation does not travel on the pipe (the worker is busy inside the pipeline): the parent sets the
worker's shared cancel event, checked between denoising steps."""

from __future__ import annotations

from dataclasses import dataclass

from studio402.backends.base import FailureCode


@dataclass(frozen=True, slots=True)
class Plan:
    """One generation, fully decided before it reaches the worker (no catalog knowledge over there)."""

    job_id: str
    prompt: str
    negative_prompt: str | None
    seed: int
    steps: int
    guidance_scale: float
    width: int  # what the model generates
    height: int
    out_width: int  # what the request asked for (frames are resized to it)
    out_height: int
    num_frames: int = 0  # 0: an image
    fps: int = 0
    image: bytes | None = None  # edit source, or the first frame
    last_image: bytes | None = None
    strength: float = 0.6
    image_format: str = "png"  # png | jpeg | webp

    @property
    def video(self) -> bool:
        return self.num_frames > 0


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class Ready:
    device: str
    pipeline: str  # the loaded class


@dataclass(frozen=True, slots=True)
class LoadFailed:
    detail: str


@dataclass(frozen=True, slots=True)
class Progress:
    job_id: str
    step: int  # 1-based: step k of n done
    total: int


@dataclass(frozen=True, slots=True)
class MediaFile:
    data: bytes
    mime: str
    role: str = "primary"


@dataclass(frozen=True, slots=True)
class Done:
    job_id: str
    files: tuple[MediaFile, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    job_id: str
    code: FailureCode
    detail: str


WorkerEvent = Ready | LoadFailed | Progress | Done | Failed
