"""A fake Gemini API (image models, generateContent) on loopback, per providers.md §3 and §10.

Wire format: `POST /{v1|v1beta}/models/{model}:generateContent`, `x-goog-api-key` (missing: 403
PERMISSION_DENIED; wrong: 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID), the `{"error": {code,
message, status, details}}` envelope, base64 `inlineData` parts in and out, Gemini 3 "thought" parts (an
interim image marked `thought: true`) before the final image.

Strict as the real API, from tests/fakes/schemas/gemini_generate_content.json (Google's reference and SDK):
unknown fields at any level (400 "Unknown name"), roles, inline MIME types, plain base64 only (a `data:` URI
is refused), at most 14 input images, a 20 MB request, each model's aspect ratios / image sizes / thinking
levels. Without `imageConfig.aspectRatio` the image follows the first input image (nearest supported ratio),
or is square when there is none.

Scenarios: ok, moderated (finishReason IMAGE_SAFETY), prohibited (IMAGE_PROHIBITED_CONTENT), no_media
(NO_IMAGE with a text part), image_other (IMAGE_OTHER), blocked (promptFeedback.blockReason, no candidate),
rate_limited_once (429 RESOURCE_EXHAUSTED with RetryInfo), server_error_once (500 INTERNAL),
server_error_always (503 UNAVAILABLE), hang."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from tests.fakes.common import FakeUpstream, image_bytes, image_size, json_response

API_KEY = "gemini-test-key"
VERSIONS = frozenset({"v1", "v1beta"})
# What the real API takes and refuses, written from Google's reference and SDK (sources in the file).
SCHEMA: Mapping[str, Any] = json.loads(
    (Path(__file__).parent / "schemas/gemini_generate_content.json").read_text()
)
MODELS: Mapping[str, Mapping[str, Any]] = SCHEMA["models"]
SIZES_1K: Mapping[str, tuple[int, int]] = {k: (v[0], v[1]) for k, v in SCHEMA["canvas_1k"].items()}
TIER_SCALE: Mapping[str, float] = SCHEMA["tier_scale"]
FINISH: Mapping[str, str] = SCHEMA["finish_reasons_without_image"]


class GoogleError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.details = status, code, details or []

    def response(self) -> Response:
        return json_response(
            self.status,
            {
                "error": {
                    "code": self.status,
                    "message": str(self),
                    "status": self.code,
                    "details": self.details,
                }
            },
        )


def retry_info(seconds: str) -> dict[str, str]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}


def invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def unknown_fields(value: Mapping[str, Any], known: list[str], where: str) -> None:
    """The real API refuses any field its proto does not have ("Unknown name")."""
    for name in sorted(set(value) - set(known)):
        raise invalid(
            f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
        )


def canvas(aspect: str, tier: str) -> tuple[int, int]:
    if aspect in SIZES_1K:
        w, h = SIZES_1K[aspect]
    else:  # the extreme Flash ratios: about 1 MP
        a, b = (int(v) for v in aspect.split(":"))
        w = round(math.sqrt(1024 * 1024 * a / b) / 16) * 16
        h = round(math.sqrt(1024 * 1024 * b / a) / 16) * 16
    scale = TIER_SCALE[tier]
    return int(w * scale), int(h * scale)


def nearest_aspect(size: tuple[int, int], aspects: list[str]) -> str:
    """The supported ratio closest to an input image's (how the output follows the input)."""

    def distance(aspect: str) -> float:
        a, b = (int(v) for v in aspect.split(":"))
        return abs(math.log(size[0] / size[1]) - math.log(a / b))

    return min(aspects, key=distance)


def _check_inline(inline: Any) -> tuple[int, int]:
    if not isinstance(inline, dict):
        raise invalid("* GenerateContentRequest.contents.parts.inline_data: must be an object")
    unknown_fields(inline, SCHEMA["inline_data_fields"], "contents.parts.inline_data")
    if inline.get("mimeType") not in SCHEMA["inline_mime_types"]:
        raise invalid(f"Unsupported MIME type: {inline.get('mimeType')}")
    try:  # a `data:` URI or anything else than plain base64 is refused
        return image_size(base64.b64decode(str(inline.get("data")), validate=True))
    except (binascii.Error, OSError, ValueError):
        raise invalid(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ) from None


def _check_contents(contents: Any) -> list[tuple[int, int]]:
    """The sizes of the input images, in order."""
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    sizes = []
    for content in contents:
        if not isinstance(content, dict):
            raise invalid("* GenerateContentRequest.contents: must be objects")
        unknown_fields(content, SCHEMA["content_fields"], "contents")
        if content.get("role", "user") not in SCHEMA["roles"]:
            raise invalid(f"Please use a valid role: {', '.join(SCHEMA['roles'])}.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
        for part in parts:
            if not isinstance(part, dict):
                raise invalid("* GenerateContentRequest.contents.parts: must be objects")
            unknown_fields(part, SCHEMA["part_fields"], "contents.parts")
            if "inlineData" in part:
                sizes.append(_check_inline(part["inlineData"]))
            elif not isinstance(part.get("text"), str):
                raise invalid("* GenerateContentRequest.contents.parts: a part needs text or inlineData")
    return sizes


def _check_config(model: str, config: Any) -> Mapping[str, Any]:
    """The imageConfig of a valid generationConfig."""
    if not isinstance(config, dict):
        raise invalid("generation_config must be an object")
    unknown_fields(config, SCHEMA["generation_config_fields"], "generation_config")
    modalities = config.get("responseModalities") or ["TEXT", "IMAGE"]
    if set(modalities) - set(SCHEMA["response_modalities"]) or "IMAGE" not in modalities:
        raise invalid("This model only supports response modalities that include IMAGE.")
    image_config = config.get("imageConfig") or {}
    unknown_fields(image_config, SCHEMA["image_config_fields"], "generation_config.image_config")
    thinking = config.get("thinkingConfig") or {}
    unknown_fields(thinking, SCHEMA["thinking_config_fields"], "generation_config.thinking_config")
    level = thinking.get("thinkingLevel")
    if level is not None and level not in MODELS[model]["thinking_levels"]:
        raise invalid(f"Invalid value at 'generation_config.thinking_config.thinking_level' ({level})")
    return image_config


def check_request(model: str, body: Any, size: int) -> tuple[str, str]:
    """The aspect ratio and image size a valid request gets: an unset ratio follows the first input image
    (the nearest supported one), or is square without images."""
    if size > SCHEMA["max_request_bytes"]:
        raise GoogleError(413, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes.")
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received.")
    unknown_fields(body, SCHEMA["request_fields"], "")
    images = _check_contents(body.get("contents"))
    spec = MODELS[model]
    if len(images) > spec["max_input_images"]:
        raise invalid(f"Too many input images: at most {spec['max_input_images']} are supported.")
    image_config = _check_config(model, body.get("generationConfig") or {})
    default = nearest_aspect(images[0], spec["aspect_ratios"]) if images else "1:1"
    aspect, tier = image_config.get("aspectRatio", default), image_config.get("imageSize", "1K")
    if aspect not in spec["aspect_ratios"] or tier not in spec["image_sizes"]:
        raise invalid(f"Unsupported image config: aspectRatio {aspect}, imageSize {tier}.")
    return aspect, tier


class FakeGemini(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.app.post("/{version}/models/{target}")(self.generate)

    def reset(self) -> None:
        super().reset()
        self.accepted: list[dict[str, Any]] = []

    def _denied(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Response | None:
        key = headers.get("x-goog-api-key") or query.get("key") or None
        if key == API_KEY:
            return None
        if key is None:
            return GoogleError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers "
                "without established identity). Please use API Key or other form of API "
                "consumer identity to call this API.",
            ).response()
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
        return GoogleError(
            400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [info]
        ).response()

    async def _scripted(self) -> Response | None:
        if self.once("rate_limited_once"):
            return GoogleError(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                [retry_info(self.retry_after)],
            ).response()
        if self.once("server_error_once"):
            return GoogleError(500, "INTERNAL", "An internal error has occurred.").response()
        if self.scenario == "server_error_always":
            return GoogleError(503, "UNAVAILABLE", "The model is overloaded. Try again later.").response()
        if self.scenario == "hang":
            await self.hang()
            return GoogleError(
                504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
            ).response()
        return None

    async def generate(self, version: str, target: str, request: Request) -> Response:
        got = await self.record(request)
        model, _, action = target.partition(":")
        if version not in VERSIONS or action != "generateContent":
            return GoogleError(404, "NOT_FOUND", f"Method not found: {version}/{target}").response()
        self.submissions += 1
        early = self._denied(got.headers, got.query) or await self._scripted()
        if early is not None:
            return early
        if model not in MODELS:
            return GoogleError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version {version}, or "
                "is not supported for generateContent.",
            ).response()
        try:
            body = json.loads(got.body)
            aspect, tier = check_request(model, body, len(got.body))
        except ValueError:
            return invalid("Invalid JSON payload received.").response()
        except GoogleError as exc:
            return exc.response()
        self.accepted.append({"version": version, "model": model, **body})
        return json_response(200, self._answer(model, canvas(aspect, tier)))

    def _answer(self, model: str, size: tuple[int, int]) -> dict[str, Any]:
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
        meta: dict[str, Any] = {"usageMetadata": usage, "modelVersion": model, "responseId": "fake-response"}
        if self.scenario == "blocked":
            return {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, **meta}
        if self.scenario in FINISH:
            candidate: dict[str, Any] = {"finishReason": FINISH[self.scenario], "index": 0}
            if self.scenario == "no_media":
                candidate["content"] = {"role": "model", "parts": [{"text": "I can't create that image."}]}
            return {"candidates": [candidate], **meta}
        thought = base64.b64encode(image_bytes(64, 64)).decode()
        final = base64.b64encode(image_bytes(*size)).decode()
        parts: list[dict[str, Any]] = [
            {"text": "Sketching the layout.", "thought": True},
            {"inlineData": {"mimeType": "image/png", "data": thought}, "thought": True},
            {"text": "Here is your image."},
            {"inlineData": {"mimeType": "image/png", "data": final}, "thoughtSignature": "c2ln"},
        ]
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            **meta,
        }
