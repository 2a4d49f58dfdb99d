"""A fake Gemini API (image models, generateContent) on loopback, per providers.md §3 and §10.

Wire format: `POST /{v1|v1beta}/models/{model}:generateContent`, `x-goog-api-key` (missing: 403
PERMISSION_DENIED; wrong: 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID), the `{"error": {code,
message, status, details}}` envelope, unknown JSON fields refused (400 "Unknown name"), base64 `inlineData`
parts in and out, Gemini 3 "thought" parts (an interim image marked `thought: true`) before the final image.

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
from typing import Any

from fastapi import Request, Response

from tests.fakes.common import FakeUpstream, image_bytes, image_size, json_response

API_KEY = "gemini-test-key"
VERSIONS = frozenset({"v1", "v1beta"})
FLASH_ASPECTS = frozenset(
    {"1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9", "21:9"}
)
PRO_ASPECTS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
MODELS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {  # model -> (aspect ratios, image sizes)
    "gemini-3.1-flash-image": (FLASH_ASPECTS, frozenset({"512", "1K", "2K", "4K"})),
    "gemini-3-pro-image": (PRO_ASPECTS, frozenset({"1K", "2K", "4K"})),
}
# 1K canvases of the Gemini 3 image models (other tiers scale them).
SIZES_1K: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
TIER_SCALE: Mapping[str, float] = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}
TOP_FIELDS = frozenset({"contents", "generationConfig", "safetySettings", "systemInstruction", "tools"})
CONFIG_FIELDS = frozenset(
    {
        "responseModalities",
        "imageConfig",
        "thinkingConfig",
        "temperature",
        "topP",
        "topK",
        "candidateCount",
        "maxOutputTokens",
        "seed",
    }
)
IMAGE_CONFIG_FIELDS = frozenset({"aspectRatio", "imageSize"})
THINKING_LEVELS = frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH"})
FINISH = {
    "moderated": "IMAGE_SAFETY",
    "prohibited": "IMAGE_PROHIBITED_CONTENT",
    "no_media": "NO_IMAGE",
    "image_other": "IMAGE_OTHER",
}


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


def canvas(aspect: str, tier: str) -> tuple[int, int]:
    if aspect in SIZES_1K:
        w, h = SIZES_1K[aspect]
    else:  # the extreme Flash ratios: about 1 MP
        a, b = (int(v) for v in aspect.split(":"))
        w = round(math.sqrt(1024 * 1024 * a / b) / 16) * 16
        h = round(math.sqrt(1024 * 1024 * b / a) / 16) * 16
    scale = TIER_SCALE[tier]
    return int(w * scale), int(h * scale)


def _check_parts(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
        for part in parts:
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if inline is None:
                if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                    raise invalid("* GenerateContentRequest.contents.parts: a part needs text or inlineData")
                continue
            try:
                image_size(base64.b64decode(inline["data"], validate=True))
            except (KeyError, binascii.Error, OSError, TypeError):
                raise invalid(
                    "Unable to process input image. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting"
                ) from None


def check_request(model: str, body: Any) -> tuple[str, str]:
    """The aspect ratio and image size a valid request asks for."""
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received.")
    for name in set(body) - TOP_FIELDS:
        raise invalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    _check_parts(body.get("contents"))
    config = body.get("generationConfig") or {}
    for name in set(config) - CONFIG_FIELDS:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config'.")
    if "IMAGE" not in (config.get("responseModalities") or ["TEXT", "IMAGE"]):
        raise invalid("This model only supports response modalities that include IMAGE.")
    image_config = config.get("imageConfig") or {}
    for name in set(image_config) - IMAGE_CONFIG_FIELDS:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at 'image_config'.")
    aspects, tiers = MODELS[model]
    aspect, tier = image_config.get("aspectRatio", "1:1"), image_config.get("imageSize", "1K")
    if aspect not in aspects or tier not in tiers:
        raise invalid(f"Unsupported image config: aspectRatio {aspect}, imageSize {tier}.")
    level = (config.get("thinkingConfig") or {}).get("thinkingLevel")
    if level is not None and str(level).upper() not in THINKING_LEVELS:
        raise invalid(f"Invalid value at 'generation_config.thinking_config.thinking_level' ({level})")
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
            aspect, tier = check_request(model, body)
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
