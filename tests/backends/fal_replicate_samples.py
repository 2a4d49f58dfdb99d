"""Sample requests for the fal and Replicate schema tests: for a catalog route, valid bodies that cover every
enum value and every media mode, as jobs carrying the media inputs a resolver would hand the backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from studio402.backends.base import BackendJob, MediaInput
from studio402.catalog import CATALOG, Route
from studio402.catalog.fields import MediaKind
from studio402.errors import ValidationFailed
from tests.backends.upstream_support import audio_input, mp4_input, png_input
from tests.catalog_samples import IMAGE_URL, SAMPLE_VALUES, enum_fields, schema, valid_body

VIDEO_URL = "https://media.example.com/uploads/b.mp4"
AUDIO_URL = "https://media.example.com/uploads/c.wav"
_VEO_MODES: list[dict[str, Any]] = [
    {"image": IMAGE_URL},
    {"image": IMAGE_URL, "lastFrame": IMAGE_URL},
    {"referenceImages": [IMAGE_URL, IMAGE_URL], "durationSeconds": "8"},
]
_SEEDANCE_MODES: list[dict[str, Any]] = [
    {"urls": [IMAGE_URL, IMAGE_URL]},
    {
        "mode": "reference",
        "prompt": "@image1 dances like @video1 to @audio1",
        "urls": [IMAGE_URL, VIDEO_URL],
        "urlMediaTypes": ["image", "video"],
        "audioUrls": [AUDIO_URL],
    },
]
MODE_BODIES: dict[str, list[dict[str, Any]]] = {
    "veo-3.1/generate": _VEO_MODES,
    "veo-3.1-fast/generate": _VEO_MODES,
    "seedance/i2v": _SEEDANCE_MODES,
    "seedance-fast/i2v": _SEEDANCE_MODES,
}
_MEDIA = {MediaKind.IMAGE: png_input, MediaKind.VIDEO: mp4_input, MediaKind.AUDIO: audio_input}


def _bodies(route: Route) -> Iterator[dict[str, Any]]:
    base = valid_body(route)
    if "prompt" in schema(route)["properties"]:  # optional in some routes, always given here
        base = {"prompt": SAMPLE_VALUES["prompt"], **base}
    yield base
    for name, values in enum_fields(route).items():
        for value in values:
            if value is not None:
                yield {**base, name: value}
    for extra in MODE_BODIES.get(route.key, []):
        yield {**base, **extra}


def sample_jobs(route: Route) -> Iterator[BackendJob]:
    """Jobs of valid requests for `route` (bodies the catalog refuses are left out)."""
    for n, body in enumerate(_bodies(route)):
        try:
            request = CATALOG.validate(route, body)
        except ValidationFailed:
            continue
        inputs: list[MediaInput] = [_MEDIA[slot.kind](slot.loc) for slot in request.params.media_slots()]
        yield BackendJob(f"job_{n}", route.model, route.operation, request.canonical, tuple(inputs))
