"""`[backends.providers.<name>] type = "diffusers"` options, and where the weights are (or that they are not).

    options = { model_path = "/srv/models/FLUX.1-schnell"      # a folder (save_pretrained / snapshot layout)
                # or a hub id pre-seeded in the HF cache:  model_path = "black-forest-labs/FLUX.1-schnell"
              , pipeline = "text-to-image" | "image-to-image" | "text-to-video" | "image-to-video"
              , workers = 1, device = "auto" | "cpu" | "cuda" | "cuda:1", dtype = "auto" | "bfloat16" | ...
              , steps, guidance_scale, fps, max_pixels, strength, offload = "none" | "model" | "sequential"
              , cache_dir, load_timeout_seconds, routes = ["flux-2-pro/generate", ...] }

Nothing here imports torch or diffusers: a missing extra or model folder is "not installed", never a crash."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio402.backends.local_gen.families import FAMILIES, Family, PipelineKind, model_class
from studio402.errors import ConfigError

_KNOWN = frozenset(
    {
        "model_path", "pipeline", "workers", "device", "dtype", "steps", "guidance_scale", "fps",
        "max_pixels", "strength", "offload", "cache_dir", "load_timeout_seconds", "routes",
    }
)  # fmt: skip
_OFFLOAD = ("none", "model", "sequential")


@dataclass(frozen=True, slots=True)
class LocalOptions:
    model_path: str
    pipeline: PipelineKind
    workers: int = 1
    device: str = "auto"
    dtype: str = "auto"
    steps: int | None = None
    guidance_scale: float | None = None
    fps: int | None = None
    max_pixels: int | None = None
    strength: float = 0.6  # img2img: how much of the source is re-noised
    offload: str = "none"
    cache_dir: str | None = None
    load_timeout_seconds: float = 600.0
    routes: frozenset[str] | None = None  # None: every catalog route of the pipeline's kind

    @classmethod
    def parse(cls, name: str, raw: Mapping[str, Any]) -> LocalOptions:
        unknown = set(raw) - _KNOWN
        if unknown:
            raise ConfigError(f"backend {name}: unknown diffusers options {sorted(unknown)}")
        if not raw.get("model_path"):
            raise ConfigError(f"backend {name}: options.model_path is required (a folder or a hub id)")
        try:
            kind = PipelineKind(raw.get("pipeline", ""))
        except ValueError:
            known = ", ".join(k.value for k in PipelineKind)
            raise ConfigError(f"backend {name}: options.pipeline must be one of {known}") from None
        if raw.get("offload", "none") not in _OFFLOAD:
            raise ConfigError(f"backend {name}: options.offload must be one of {', '.join(_OFFLOAD)}")
        values = {k: v for k, v in raw.items() if k not in ("pipeline", "routes", "model_path")}
        routes = raw.get("routes")
        try:
            options = cls(
                model_path=str(raw["model_path"]),
                pipeline=kind,
                routes=frozenset(routes) if routes is not None else None,
                **values,
            )
        except TypeError as exc:
            raise ConfigError(f"backend {name}: bad diffusers options ({exc})") from None
        if options.workers < 1:
            raise ConfigError(f"backend {name}: options.workers must be at least 1")
        return options


@dataclass(frozen=True, slots=True)
class Installed:
    """A model that can be loaded offline: its folder (or hub id + cache), class and family."""

    source: str  # what from_pretrained is given
    class_name: str
    family: Family


def locate(options: LocalOptions) -> Installed | str:
    """The installed model, or why it is not installed (a sentence starting "not installed")."""
    if importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("torch") is None:
        return "not installed: torch/diffusers missing (pip install 'studio402[local]')"
    folder = Path(options.model_path).expanduser()
    if folder.is_dir():
        source = str(folder)
    else:
        cached = _hub_snapshot(options.model_path, options.cache_dir)
        if cached is None:
            return f"not installed: no model folder or cached hub snapshot at {options.model_path}"
        folder, source = cached, options.model_path
    class_name = model_class(folder)
    if class_name is None:
        return f"not installed: {folder} has no readable model_index.json"
    family = FAMILIES.get(class_name)
    if family is None:
        return f"not installed: pipeline class {class_name} is not supported"
    if options.pipeline not in family.kinds:
        kinds = ", ".join(sorted(k.value for k in family.kinds))
        return f"not installed: {class_name} serves {kinds}, not {options.pipeline.value}"
    return Installed(source, class_name, family)


def _hub_snapshot(repo_id: str, cache_dir: str | None) -> Path | None:
    """The cached snapshot folder of a hub id, looked up offline (no network: a cache read only)."""
    if repo_id.count("/") != 1 or importlib.util.find_spec("huggingface_hub") is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=cache_dir)
    return Path(found).parent if isinstance(found, str) else None
