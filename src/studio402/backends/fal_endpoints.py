"""Which fal endpoint serves a request, and what that endpoint accepts.

fal publishes one endpoint per mode of a model, each with its own input schema (fal.ai/models/<id>/llms.txt).
The operator maps a route or model to a *base* endpoint in `models`; the request's mode picks the endpoint
(a configured mode endpoint such as ".../image-to-video" is read as its base):

  Veo 3.1          fal-ai/veo3.1, fal-ai/veo3.1/fast
    none           {base}                              duration "4s" | "6s" | "8s"
    first-frame    {base}/image-to-video               image -> image_url
    interpolation  {base}/first-last-frame-to-video    image -> first_frame_url, lastFrame -> last_frame_url
    reference      {base}/reference-to-video           referenceImages -> image_urls (fal-ai/veo3.1 only: fal
                                                       has no Veo 3.1 Fast reference endpoint, so it refuses)
  Seedance 2.0     bytedance/seedance-2.0, bytedance/seedance-2.0/fast
    t2v            {base}/text-to-video
    i2v keyframe   {base}/image-to-video               first frame -> image_url, last -> end_image_url
    i2v reference  {base}/reference-to-video           image_urls, video_urls, audio_urls; prompt "@Image1"
  Nano Banana 2 / Pro   fal-ai/nano-banana-2, fal-ai/nano-banana-pro
    generate       {base}                              imageSize -> resolution ("512" -> "0.5K")
    edit           {base}/edit                         images -> image_urls

Any other endpoint is sent as configured, with the generic mapping (and only `options.accepts` names when the
operator lists them). The field lists below are those of fal's published input schemas; the test data under
tests/fakes/schemas/ holds the full schemas (enums, limits) and checks these lists against them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from studio402.backends.fal_replicate_inputs import Published, seedance_refusal
from studio402.catalog.models.veo import VeoGenerate

Params = Mapping[str, Any]

_VEO = frozenset(
    {"prompt", "aspect_ratio", "duration", "negative_prompt", "resolution", "generate_audio", "seed"}
    | {"auto_fix", "safety_tolerance"}
)
_VEO_T2V = Published(_VEO, templates={"duration": "{}s"})
_VEO_I2V = Published(_VEO | {"image_url"}, templates={"duration": "{}s"})
_VEO_FLF = Published(
    _VEO | {"first_frame_url", "last_frame_url"},
    rename={"image": "first_frame_url", "lastFrame": "last_frame_url"},
    templates={"duration": "{}s"},
)
# The reference endpoint lists neither seed nor negative_prompt.
_VEO_R2V = Published((_VEO - {"seed", "negative_prompt"}) | {"image_urls"}, templates={"duration": "{}s"})

_SEEDANCE = frozenset({"prompt", "resolution", "duration", "aspect_ratio", "generate_audio", "seed"})
_SEEDANCE_REFS = "@{kind}{n}"  # fal's Seedance prompts name references @Image1, @Video1, @Audio1

_NANO = frozenset(
    {"prompt", "num_images", "seed", "aspect_ratio", "output_format", "safety_tolerance", "sync_mode"}
    | {"resolution", "limit_generations", "enable_web_search"}
)
_NANO_2 = _NANO | {"thinking_level"}
_HALF_K = {"resolution": {"512": "0.5K"}}  # Nano Banana 2 names its 512 px tier "0.5K"

ENDPOINTS: Mapping[str, Published] = {
    "fal-ai/veo3.1": _VEO_T2V,
    "fal-ai/veo3.1/image-to-video": _VEO_I2V,
    "fal-ai/veo3.1/first-last-frame-to-video": _VEO_FLF,
    "fal-ai/veo3.1/reference-to-video": _VEO_R2V,
    "fal-ai/veo3.1/fast": _VEO_T2V,
    "fal-ai/veo3.1/fast/image-to-video": _VEO_I2V,
    "fal-ai/veo3.1/fast/first-last-frame-to-video": _VEO_FLF,
    **{
        f"bytedance/seedance-2.0{tier}/{mode}": Published(_SEEDANCE | extra, refs=_SEEDANCE_REFS)
        for tier in ("", "/fast")
        for mode, extra in (
            ("text-to-video", frozenset()),
            ("image-to-video", frozenset({"image_url", "end_image_url"})),
            ("reference-to-video", frozenset({"image_urls", "video_urls", "audio_urls"})),
        )
    },
    "fal-ai/nano-banana-2": Published(_NANO_2, values=_HALF_K),
    "fal-ai/nano-banana-2/edit": Published(_NANO_2 | {"image_urls"}, values=_HALF_K),
    "fal-ai/nano-banana-pro": Published(_NANO),
    "fal-ai/nano-banana-pro/edit": Published(_NANO | {"image_urls"}),
}


def _veo_mode(operation: str, params: Params) -> str:
    return VeoGenerate.model_construct(**params).effective_mode()


def _seedance_mode(operation: str, params: Params) -> str:
    return "t2v" if operation == "t2v" else str(params.get("mode", "keyframe"))


def _seedance_check(params: Params) -> str | None:
    return seedance_refusal(params, "fal's Seedance endpoints")


@dataclass(frozen=True, slots=True)
class Family:
    """The endpoints of one model on fal: base endpoints, and the suffix each mode of a request adds."""

    label: str
    bases: tuple[str, ...]  # longest first: "x/fast" before "x"
    modes: Mapping[str, str]
    mode_of: Callable[[str, Params], str]
    check: Callable[[Params], str | None] = lambda params: None

    def base_of(self, configured: str) -> str | None:
        for base in self.bases:
            if configured == base or any(configured == base + suffix for suffix in self.modes.values()):
                return base
        return None


FAMILIES = (
    Family(
        "Veo 3.1",
        ("fal-ai/veo3.1/fast", "fal-ai/veo3.1"),
        {
            "none": "",
            "first-frame": "/image-to-video",
            "interpolation": "/first-last-frame-to-video",
            "reference": "/reference-to-video",
        },
        _veo_mode,
    ),
    Family(
        "Seedance 2.0",
        ("bytedance/seedance-2.0/fast", "bytedance/seedance-2.0"),
        {"t2v": "/text-to-video", "keyframe": "/image-to-video", "reference": "/reference-to-video"},
        _seedance_mode,
        _seedance_check,
    ),
    Family(
        "Nano Banana",
        ("fal-ai/nano-banana-2", "fal-ai/nano-banana-pro"),
        {"generate": "", "edit": "/edit"},
        lambda operation, params: operation,
    ),
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: the endpoint, its published inputs (None: unknown to us), or why it cannot go."""

    endpoint: str
    published: Published | None
    refusal: str | None = None


def target(configured: str, operation: str, params: Params) -> Target:
    configured = configured.strip("/")
    for family in FAMILIES:
        base = family.base_of(configured)
        if base is None:
            continue
        mode = family.mode_of(operation, params)
        endpoint = base + family.modes.get(mode, f"/{mode}")
        published = ENDPOINTS.get(endpoint)
        if published is None:
            return Target(endpoint, None, f"fal has no {family.label} endpoint for {mode} mode under {base}")
        return Target(endpoint, published, family.check(params))
    return Target(configured, ENDPOINTS.get(configured))
