"""What the Replicate models we know accept, and what they cannot do.

Each entry is the input schema Replicate publishes for the model's version (replicate.com/<owner>/<name>/
versions/<id>/api; the full schemas, enums and limits, are test data under tests/fakes/schemas/): the input
names the adapter may send, the names and values the generic mapping needs changed, and the limits to refuse
before payment. The model comes from the configured target ("owner/name" or "owner/name:<version>");
deployments and bare version ids name none: `options.runs` says which model they run (target -> owner/name),
else they get the generic mapping (and `options.accepts`).

  google/veo-3.1, -fast        durations 4 | 6 | 8 (integers); reference_images only at 16:9 and 8 s, and
                               not on -fast ("last frame support", no R2V)
  google/nano-banana-2, -pro   images -> image_input; resolution 1K | 2K | 4K (no 512 px tier)
  black-forest-labs/flux-2-*   images -> input_images (at most 8); safety_tolerance 1-5 (BFL's 0 -> 1)
  bytedance/seedance-2.0(-fast) first/last frame -> image / last_frame_image, reference_*; prompts name
                               references [Image1], [Video1], [Audio1]; no exact pixel size, no 4K upscale"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from studio402.backends.fal_replicate_inputs import Published, seedance_refusal
from studio402.catalog.models.veo import VeoGenerate
from studio402.errors import ConfigError

Params = Mapping[str, Any]
MAX_FLUX_IMAGES = 8


def _veo_check(params: Params, *, references: bool) -> str | None:
    if VeoGenerate.model_construct(**params).effective_mode() != "reference":
        return None
    if not references:
        return "Replicate's Veo 3.1 Fast takes no reference images"
    if params.get("aspectRatio", "16:9") != "16:9" or str(params.get("durationSeconds", "8")) != "8":
        return "Replicate's Veo 3.1 takes reference images only at 16:9 and 8 seconds"
    return None


def _nano_check(params: Params) -> str | None:
    if params.get("imageSize") == "512":
        return "Replicate's Nano Banana has no 512 px tier (1K, 2K, 4K)"
    return None


def _flux_check(params: Params) -> str | None:
    if len(params.get("images") or ()) > MAX_FLUX_IMAGES:
        return f"Replicate's FLUX.2 takes at most {MAX_FLUX_IMAGES} input images"
    return None


def _seedance_check(params: Params) -> str | None:
    return seedance_refusal(params, "Replicate's Seedance 2.0 versions")


@dataclass(frozen=True, slots=True)
class Model:
    inputs: Published
    check: Callable[[Params], str | None] = lambda params: None


_VEO = frozenset(
    {"prompt", "aspect_ratio", "duration", "image", "last_frame", "negative_prompt", "resolution", "seed"}
    | {"generate_audio"}
)
_NANO = {"images": "image_input", "imageSize": "resolution"}
_FLUX = Published(
    frozenset(
        {"prompt", "input_images", "aspect_ratio", "resolution", "width", "height", "seed"}
        | {"safety_tolerance", "output_format", "output_quality"}
    ),
    rename={"images": "input_images"},
    values={"safety_tolerance": {0: 1}},  # BFL's 0 (strictest) is Replicate's 1
)
_SEEDANCE = Published(
    frozenset(
        {"prompt", "image", "last_frame_image", "reference_images", "reference_videos", "reference_audios"}
        | {"duration", "resolution", "aspect_ratio", "generate_audio", "seed"}
    ),
    refs="[{kind}{n}]",
)

MODELS: Mapping[str, Model] = {
    "google/veo-3.1": Model(Published(_VEO | {"reference_images"}), lambda p: _veo_check(p, references=True)),
    "google/veo-3.1-fast": Model(Published(_VEO), lambda p: _veo_check(p, references=False)),
    "google/nano-banana-2": Model(
        Published(
            frozenset(
                {"prompt", "image_input", "aspect_ratio", "resolution", "output_format"}
                | {"google_search", "image_search"}
            ),
            rename=_NANO,
        ),
        _nano_check,
    ),
    "google/nano-banana-pro": Model(
        Published(
            frozenset(
                {"prompt", "image_input", "aspect_ratio", "resolution", "output_format"}
                | {"safety_filter_level"}
            ),
            rename=_NANO,
        ),
        _nano_check,
    ),
    "black-forest-labs/flux-2-pro": Model(_FLUX, _flux_check),
    "black-forest-labs/flux-2-max": Model(_FLUX, _flux_check),
    "bytedance/seedance-2.0": Model(_SEEDANCE, _seedance_check),
    "bytedance/seedance-2.0-fast": Model(_SEEDANCE, _seedance_check),
}


def model_of(target: str, runs: Mapping[str, str] | None = None) -> str | None:
    """The "owner/name" a configured target runs: its own name, else what `options.runs` says."""
    target = target.strip("/")
    if runs and target in runs:
        return runs[target]
    if target.startswith("deployments/") or (":" not in target and target.count("/") != 1):
        return None
    return target.partition(":")[0]


def known(target: str, runs: Mapping[str, str] | None = None) -> Model | None:
    name = model_of(target, runs)
    return MODELS.get(name) if name else None


def runs_option(options: Mapping[str, Any]) -> dict[str, str]:
    """`options.runs`: deployment or version target -> the "owner/name" it runs."""
    table = options.get("runs", {})
    if not isinstance(table, Mapping) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError("options.runs must be a table of target -> owner/name")
    return {str(k).strip("/"): v for k, v in table.items()}
