"""The request bodies of the Gemini and Veo (Agent Platform) adapters, for every catalog route they serve,
checked against Google's own SDK (google-genai, a dev dependency; the runtime stays on httpx):

1. the body's config validates as the SDK's pydantic types (`GenerateContentConfig`, `Content`,
   `GenerateVideosConfig`, `Image`, `VideoGenerationReferenceImage`; they forbid unknown fields);
2. the SDK's own converters (`_GenerateContentParameters_to_mldev`, `_GenerateVideosParameters_to_vertex`)
   turn those values back into the same wire body we send, field for field.

So a field the SDK does not know, a wire name it spells differently, or a value of another type fails here."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any

import pydantic
import pytest
from google.genai import models as sdk_models
from google.genai import types
from google.genai._api_client import BaseApiClient
from pydantic.alias_generators import to_camel

from studio402.backends.base import BackendJob, MediaInput
from studio402.backends.gemini import GeminiImageBackend, request_body
from studio402.backends.vertex_veo import VertexVeoBackend, instance, parameters, reference_refusal
from studio402.catalog import CATALOG, Route
from studio402.errors import ValidationFailed
from tests.backends.flows import image_input, provider
from tests.catalog_samples import IMAGE_URL, enum_combinations

GEMINI = GeminiImageBackend("gemini", provider("gemini", "http://127.0.0.1:9", "k"))
VEO = VertexVeoBackend("veo", provider("vertex-veo", "http://127.0.0.1:9", "k", auth="api_key"))
BYTES_FIELDS = frozenset({"data", "bytesBase64Encoded"})
# Veo's REST reference writes referenceType in lower case ("asset"), the SDK sends its enum ("ASSET"); the
# SDK's enum is case-insensitive and both reach the same model, so the comparison ignores the case.
CASELESS_FIELDS = frozenset({"referenceType"})
# REST name of a Veo parameter -> the GenerateVideosConfig field the SDK sends under that name.
VEO_PARAMETERS = {
    "sampleCount": "number_of_videos",
    "durationSeconds": "duration_seconds",
    "aspectRatio": "aspect_ratio",
    "resolution": "resolution",
    "generateAudio": "generate_audio",
    "seed": "seed",
    "negativePrompt": "negative_prompt",
    "personGeneration": "person_generation",
}


def served(backend: GeminiImageBackend | VertexVeoBackend) -> list[Route]:
    return [r for r in CATALOG if backend.supports(r.key)]


def media_variants(route: Route) -> list[dict[str, Any]]:
    """Media to add to the enum combinations: each way the route takes images."""
    fields = set(route.input.model_fields)
    if "images" in fields:
        return [{"images": [IMAGE_URL]}, {"images": [IMAGE_URL, IMAGE_URL]}]
    if "referenceImages" in fields:
        return [
            {},
            {"image": IMAGE_URL},
            {"image": IMAGE_URL, "lastFrame": IMAGE_URL},
            {"referenceImages": [IMAGE_URL, IMAGE_URL]},
        ]
    return [{}]


def inputs_of(params: Mapping[str, Any]) -> tuple[MediaInput, ...]:
    found: list[MediaInput] = []
    for name in ("images", "image", "lastFrame", "referenceImages"):
        value = params.get(name)
        if isinstance(value, list):
            found += [image_input(name, i, (64 + 16 * i, 48)) for i in range(len(value))]
        elif value:
            found.append(image_input(name, None, (80, 48)))
    return tuple(found)


def jobs(route: Route) -> Iterator[BackendJob]:
    """Every valid combination of the route's enums with each media variant, as the adapter receives it."""
    for body in enum_combinations(route):
        for media in media_variants(route):
            try:
                request = CATALOG.validate(route, {**body, **media})
            except ValidationFailed:
                continue  # a combination the route itself refuses (e.g. an image mode without its image)
            params = dict(request.canonical)
            yield BackendJob(
                "job_sdk", route.model, route.operation, params, inputs_of(params), seed=2**40 + 3
            )


def wire(value: Any, key: str = "") -> Any:
    """A body in comparable form: camelCase keys, enum values, base64 fields decoded (either alphabet)."""
    if isinstance(value, pydantic.BaseModel):
        return wire(value.model_dump(by_alias=True, exclude_none=True), key)
    if isinstance(value, dict):
        return {to_camel(k): wire(v, to_camel(k)) for k, v in value.items() if k != "_url"}
    if isinstance(value, list):
        return [wire(v, key) for v in value]
    if isinstance(value, Enum):
        value = value.value
    if key in BYTES_FIELDS and isinstance(value, str):
        return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_"))
    if key in CASELESS_FIELDS and isinstance(value, str):
        return value.lower()
    return value


def test_every_google_route_is_covered() -> None:
    assert {r.key for r in served(GEMINI)} == {
        "nano-banana/generate",
        "nano-banana/edit",
        "nano-banana-pro/generate",
        "nano-banana-pro/edit",
    }
    assert {r.key for r in served(VEO)} == {"veo-3.1/generate", "veo-3.1-fast/generate"}


@pytest.mark.parametrize("route", served(GEMINI), ids=lambda r: r.key)
def test_gemini_bodies_are_what_google_genai_sends(route: Route) -> None:
    client = BaseApiClient(api_key="k")  # Gemini Developer API mode (no network: converters only)
    checked = 0
    for job in jobs(route):
        body = request_body(job)
        config = types.GenerateContentConfig.model_validate(body["generationConfig"])
        contents = [types.Content.model_validate_json(json.dumps(c)) for c in body["contents"]]
        blobs = [p.inline_data.data for c in contents for p in c.parts or [] if p.inline_data]
        assert blobs == [m.data for m in job.inputs]  # base64 the SDK decodes back to our bytes
        sdk = sdk_models._GenerateContentParameters_to_mldev(
            client, {"model": "gemini-3-pro-image", "contents": contents, "config": config}
        )
        assert wire(sdk) == wire(body), body["generationConfig"]
        checked += 1
    assert checked >= 4


def sdk_video_parameters(model: str, body: Mapping[str, Any]) -> types._GenerateVideosParameters:
    """Our Veo body as the SDK's own parameter types (unknown names or wrong types fail validation)."""
    inst, params = body["instances"][0], body["parameters"]

    def image(value: Mapping[str, Any]) -> types.Image:
        return types.Image.model_validate_json(
            json.dumps({"imageBytes": value["bytesBase64Encoded"], "mimeType": value["mimeType"]})
        )

    config: dict[str, Any] = {VEO_PARAMETERS[name]: value for name, value in params.items()}
    if "lastFrame" in inst:
        config["last_frame"] = image(inst["lastFrame"])
    if "referenceImages" in inst:
        config["reference_images"] = [
            types.VideoGenerationReferenceImage(image=image(r["image"]), reference_type=r["referenceType"])
            for r in inst["referenceImages"]
        ]
    assert set(inst) <= {"prompt", "image", "lastFrame", "referenceImages"}, inst.keys()
    return types._GenerateVideosParameters(
        model=model,
        prompt=inst["prompt"],
        image=image(inst["image"]) if "image" in inst else None,
        config=types.GenerateVideosConfig.model_validate(config),
    )


@pytest.mark.parametrize("route", served(VEO), ids=lambda r: r.key)
def test_veo_bodies_are_what_google_genai_sends(route: Route) -> None:
    client = BaseApiClient(vertexai=True, api_key="k")  # Agent Platform mode (express: no credentials)
    checked = 0
    for job in jobs(route):
        if reference_refusal(job.params) is not None:
            continue  # refused before payment: never sent
        options = {"person_generation": "allow_adult"} if checked % 2 else {}
        body = {"instances": [instance(job)], "parameters": parameters(job, options)}
        sdk = sdk_models._GenerateVideosParameters_to_vertex(
            client, sdk_video_parameters("veo-3.1-generate-001", body)
        )
        assert wire(sdk) == wire(body), body["parameters"]
        checked += 1
    assert checked >= 20


def test_the_sdk_uses_the_global_host_for_express_mode() -> None:
    """What our express mode does too (test_vertex_veo::test_express_mode_uses_the_global_host)."""
    client = BaseApiClient(vertexai=True, api_key="k")
    assert client._http_options.base_url == "https://aiplatform.googleapis.com/"
