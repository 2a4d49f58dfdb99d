"""A fake OpenAI API (Images and Videos) on loopback, per providers.md §1, §2 and §10.

Wire format: `Authorization: Bearer` (else 401 invalid_api_key), the `{"error": {message, type, param, code}}`
envelope, the parameters, values and limits of tests/fakes/schemas/openai.json (the SDK's types: an unknown
parameter is refused, `moderation` only on generations), JSON generations and multipart-only edits (`image` or
`image[]`), `GET /v1/models` (the probe's read), `b64_json` results only
(`response_format` refused), multipart (or JSON) video creates with `seconds` as a string and an
`input_reference` file that must match `size` exactly, `queued -> in_progress -> completed|failed` with rising
`progress` and `openai-poll-after-ms`, and binary `/content?variant=video|thumbnail|spritesheet`.

Scenarios (`fake.scenario`): on any create: rate_limited_once (429 + retry-after / retry-after-ms),
server_error_once, server_error_always, hang; images: moderated (400 moderation_blocked), no_media (200 with
no data); videos: moderated_input (400 on create), moderated / failed (the job fails), never_done,
poll_error_once (500 on one poll), expired (content 404), no_media (empty content), bad_thumbnail (an
undecodable thumbnail)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from tests.fakes.common import (
    FakeUpstream,
    FormPart,
    image_bytes,
    image_size,
    json_response,
    mp4_bytes,
    parse_multipart,
)
from tests.fakes.schema_check import schema

API_KEY = "sk-test-openai"
SPEC: Mapping[str, Any] = schema("openai.json")
IMAGE_MODELS = frozenset(SPEC["image_models"])
VIDEO_MODELS = frozenset(SPEC["video_models"])
FIXED_SIZES = frozenset(SPEC["fixed_sizes"])
CHOICES: Mapping[str, frozenset[str]] = {k: frozenset(v) for k, v in SPEC["choices"].items()}
GENERATE_FIELDS = frozenset(SPEC["generate_fields"])
EDIT_FIELDS = frozenset(SPEC["edit_fields"])
SORA_SIZES = frozenset(SPEC["video_sizes"])
PRO_SIZES = frozenset(SPEC["pro_video_sizes"])
VIDEO_SECONDS = frozenset(SPEC["video_seconds"])
IMAGE_MIMES = frozenset(SPEC["image_mimes"])


class BadRequest(Exception):
    def __init__(
        self,
        message: str,
        param: str | None = None,
        code: str | None = None,
        *,
        kind: str = "invalid_request_error",
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.body = error_body(message, kind, param, code)
        self.status = status

    def response(self) -> Response:
        return json_response(self.status, self.body)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _choice(fields: Mapping[str, Any], name: str) -> None:
    if name in fields and fields[name] not in CHOICES[name]:
        raise BadRequest(
            f"Invalid value: '{fields[name]}'. Supported values are: {', '.join(sorted(CHOICES[name]))}.",
            name,
            "invalid_value",
        )


def _check_size(model: str, size: Any) -> None:
    if size in FIXED_SIZES:
        return
    parts = str(size).split("x")
    if not model.startswith("gpt-image-2") or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise BadRequest(f"Invalid value: '{size}'.", "size", "invalid_value")
    w, h, rule = int(parts[0]), int(parts[1]), SPEC["custom_size"]
    if (
        w % rule["step"]
        or h % rule["step"]
        or max(w, h) > rule["max_ratio"] * min(w, h)
        or w * h > rule["max_pixels"]
    ):
        raise BadRequest(f"Invalid size '{size}': multiples of 16, ratio up to 3:1, up to 3840x2160.", "size")


def check_image_fields(fields: Mapping[str, Any], *, edit: bool) -> None:
    unknown = set(fields) - (EDIT_FIELDS if edit else GENERATE_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise BadRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    model = str(fields.get("model", ""))
    if model not in IMAGE_MODELS:
        raise BadRequest(f"Invalid value: '{model}'. Use a GPT image model.", "model", "invalid_value")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > SPEC["max_prompt_chars"]:
        raise BadRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not 1 <= int(fields.get("n", 1)) <= 10:
        raise BadRequest("n must be between 1 and 10", "n", "invalid_value")
    _check_size(model, fields.get("size", "auto"))
    for name in CHOICES:
        _choice(fields, name)
    if fields.get("background") == "transparent" and fields.get("output_format") == "jpeg":
        raise BadRequest("Transparent background requires output_format png or webp.", "background")
    if "input_fidelity" in fields and (not edit or model.startswith("gpt-image-2")):
        raise BadRequest(
            f"input_fidelity is not supported for {model}.", "input_fidelity", "unsupported_parameter"
        )


@dataclass
class FakeVideo:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: int
    status: str = "queued"
    progress: int = 0
    polls: int = 0
    error: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        done = self.status in ("completed", "failed")
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at,
            "completed_at": self.created_at + 60 if done else None,
            "expires_at": self.created_at + 3600 if self.status == "completed" else None,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "remixed_from_video_id": None,
            "error": self.error,
        }


class FakeOpenAI(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        app = self.app
        app.post("/v1/images/generations")(self.generations)
        app.post("/v1/images/edits")(self.edits)
        app.post("/v1/videos")(self.create_video)
        app.get("/v1/videos/{video_id}")(self.get_video)
        app.get("/v1/videos/{video_id}/content")(self.content)
        app.delete("/v1/videos/{video_id}")(self.delete_video)
        app.get("/v1/models")(self.list_models)

    def reset(self) -> None:
        super().reset()
        self.videos: dict[str, FakeVideo] = {}
        self.accepted: list[dict[str, Any]] = []  # the fields of every request that was served
        self.references: list[tuple[str, tuple[int, int]]] = []  # (content type, size) of video references
        self.steps = 2  # polls until a video ends
        self.poll_after_ms = "5"

    @property
    def created(self) -> int:
        return len(self.videos)

    def _denied(self, headers: Mapping[str, str]) -> Response | None:
        if headers.get("authorization") == f"Bearer {API_KEY}":
            return None
        return json_response(
            401, error_body("Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key")
        )

    async def _scripted(self) -> Response | None:
        """Failures of a create request, before it is looked at."""
        if self.once("rate_limited_once"):
            ms = str(int(float(self.retry_after) * 1000))
            return json_response(
                429,
                error_body("Rate limit reached for requests", "requests", None, "rate_limit_exceeded"),
                {"retry-after": self.retry_after, "retry-after-ms": ms},
            )
        if self.once("server_error_once") or self.scenario == "server_error_always":
            return json_response(
                500, error_body("The server had an error while processing your request.", "server_error")
            )
        if self.scenario == "hang":
            await self.hang()
            return json_response(504, error_body("gateway timeout", "server_error"))
        return None

    async def _begin(self, request: Request) -> tuple[bytes, str, Response | None]:
        got = await self.record(request)
        self.submissions += 1
        early = self._denied(got.headers) or await self._scripted()
        return got.body, got.headers.get("content-type", ""), early

    async def list_models(self, request: Request) -> Response:
        """GET /v1/models: the probe's cheap authenticated read."""
        got = await self.record(request)
        models = sorted(IMAGE_MODELS | VIDEO_MODELS)
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for m in models]
        return self._denied(got.headers) or json_response(200, {"object": "list", "data": data})

    # --- images -----------------------------------------------------------------------------------------
    async def generations(self, request: Request) -> Response:
        body, _, early = await self._begin(request)
        if early is not None:
            return early
        try:
            fields = json.loads(body)
            if not isinstance(fields, dict):
                raise BadRequest("The body must be a JSON object.")
            check_image_fields(fields, edit=False)
        except ValueError:
            return BadRequest("We could not parse the JSON body of your request.").response()
        except BadRequest as exc:
            return exc.response()
        return self._image_answer(fields)

    async def edits(self, request: Request) -> Response:
        body, content_type, early = await self._begin(request)
        if early is not None:
            return early
        try:
            parts = parse_multipart(content_type, body)
        except ValueError:
            return BadRequest("Invalid Content-Type header, expected multipart/form-data.").response()
        try:
            fields = {p.name: p.text for p in parts if p.filename is None}
            images = _edit_images(parts)
            check_image_fields(fields, edit=True)
        except BadRequest as exc:
            return exc.response()
        return self._image_answer({**fields, "images": images})

    def _image_answer(self, fields: dict[str, Any]) -> Response:
        if self.scenario == "moderated":
            body = error_body(
                "Your request was rejected by the safety system.",
                "image_generation_user_error",
                None,
                "moderation_blocked",
            )
            body["error"]["moderation_details"] = {"moderation_stage": "input"}
            return json_response(400, body)
        self.accepted.append(fields)
        size = fields.get("size", "auto")
        w, h = (1024, 1024) if size == "auto" else (int(v) for v in str(size).split("x"))
        fmt = str(fields.get("output_format", "png"))
        data = image_bytes(w, h, fmt, transparent=fields.get("background") == "transparent")
        items = [] if self.scenario == "no_media" else [{"b64_json": base64.b64encode(data).decode()}]
        usage = {
            "input_tokens": 50,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
            "output_tokens": 1056,
            "total_tokens": 1106,
        }
        return json_response(
            200,
            {
                "created": int(time.time()),
                "data": items,
                "background": fields.get("background", "opaque"),
                "output_format": fmt,
                "quality": fields.get("quality", "medium"),
                "size": f"{w}x{h}",
                "usage": usage,
            },
        )

    # --- videos -----------------------------------------------------------------------------------------
    async def create_video(self, request: Request) -> Response:
        body, content_type, early = await self._begin(request)
        if early is not None:
            return early
        try:
            fields, reference = _video_fields(content_type, body)
            video = self._new_video(fields, reference)
        except BadRequest as exc:
            return exc.response()
        if self.scenario == "moderated_input":
            return json_response(
                400,
                error_body(
                    "Your request was blocked by our moderation system.",
                    "invalid_request_error",
                    None,
                    "moderation_blocked",
                ),
            )
        self.videos[video.id] = video
        self.accepted.append(fields)
        return json_response(200, video.as_json())

    def _new_video(self, fields: Mapping[str, Any], reference: FormPart | None) -> FakeVideo:
        model = str(fields.get("model", "sora-2"))
        if model not in VIDEO_MODELS:
            raise BadRequest(f"Invalid value: '{model}'.", "model", "invalid_value")
        prompt, seconds = fields.get("prompt"), fields.get("seconds", "4")
        size = str(fields.get("size", "720x1280"))
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        if not isinstance(seconds, str):
            raise BadRequest("Invalid type for 'seconds': expected a string.", "seconds", "invalid_type")
        if seconds not in VIDEO_SECONDS:
            raise BadRequest(f"Invalid value: '{seconds}'.", "seconds", "invalid_value")
        if size not in (PRO_SIZES if "pro" in model else SORA_SIZES):
            raise BadRequest(f"Invalid value: '{size}'.", "size", "invalid_value")
        if reference is not None:
            self._check_reference(reference, size)
        return FakeVideo("video_" + secrets.token_hex(12), model, prompt, seconds, size, int(time.time()))

    def _check_reference(self, part: FormPart, size: str) -> None:
        try:
            got = image_size(part.data)
        except OSError:
            raise BadRequest("input_reference is not a valid image.", "input_reference") from None
        if part.content_type not in IMAGE_MIMES:
            raise BadRequest("input_reference must be png, jpeg or webp.", "input_reference")
        if f"{got[0]}x{got[1]}" != size:
            raise BadRequest("Inpaint image must match the requested width and height", None)
        self.references.append((part.content_type, got))

    async def get_video(self, video_id: str, request: Request) -> Response:
        got = await self.record(request)
        denied = self._denied(got.headers)
        if denied is not None:
            return denied
        video = self.videos.get(video_id)
        if video is None:
            return _not_found(video_id)
        if self.once("poll_error_once"):
            return json_response(500, error_body("The server had an error.", "server_error"))
        if not self.hold and self.scenario != "never_done" and video.status in ("queued", "in_progress"):
            self._advance(video)
        return json_response(200, video.as_json(), {"openai-poll-after-ms": self.poll_after_ms})

    def _advance(self, video: FakeVideo) -> None:
        video.polls += 1
        if video.polls < self.steps:
            video.status, video.progress = "in_progress", video.polls * 100 // self.steps
        elif self.scenario in ("failed", "moderated"):
            code = "moderation_blocked" if self.scenario == "moderated" else "internal_error"
            video.status, video.error = "failed", {"code": code, "message": f"video generation {code}"}
        else:
            video.status, video.progress = "completed", 100

    async def content(self, video_id: str, request: Request) -> Response:
        got = await self.record(request)
        denied = self._denied(got.headers)
        if denied is not None:
            return denied
        video = self.videos.get(video_id)
        if video is None or self.scenario == "expired":
            return _not_found(video_id)
        if video.status != "completed":
            return BadRequest("Video is not ready yet.", None, "video_not_ready").response()
        if self.scenario == "no_media":
            return Response(b"", media_type="video/mp4")
        w, h = (int(v) for v in video.size.split("x"))
        variant = got.query.get("variant", "video")
        if variant == "video":
            return Response(mp4_bytes(w, h, int(video.seconds)), media_type="video/mp4")
        if variant == "thumbnail" and self.scenario == "bad_thumbnail":
            return Response(b"RIFF-not-really-webp", media_type="image/webp")
        if variant in ("thumbnail", "spritesheet"):
            fmt = "webp" if variant == "thumbnail" else "jpeg"
            return Response(image_bytes(w // 4, h // 4, fmt), media_type=f"image/{fmt}")
        return BadRequest(f"Invalid value: '{variant}'.", "variant", "invalid_value").response()

    async def delete_video(self, video_id: str, request: Request) -> Response:
        got = await self.record(request)
        denied = self._denied(got.headers)
        if denied is not None:
            return denied
        if self.videos.pop(video_id, None) is None:
            return _not_found(video_id)
        return json_response(200, {"id": video_id, "object": "video.deleted", "deleted": True})


def _not_found(video_id: str) -> Response:
    return json_response(
        404,
        error_body(
            f"Video with id '{video_id}' not found.", "invalid_request_error", None, "video_not_found"
        ),
    )


def _edit_images(parts: list[FormPart]) -> list[tuple[str, tuple[int, int]]]:
    images = [p for p in parts if p.name in ("image", "image[]")]
    if not images:
        raise BadRequest("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if len(images) > SPEC["max_edit_images"]:
        raise BadRequest(f"Too many images: at most {SPEC['max_edit_images']}.", "image")
    found = []
    for part in images:
        try:
            size = image_size(part.data)
        except OSError:
            raise BadRequest("Invalid image file.", "image", "invalid_image_format") from None
        if part.content_type not in IMAGE_MIMES:
            raise BadRequest(
                f"Unsupported mimetype ('{part.content_type}').", "image", "invalid_image_format"
            )
        found.append((part.content_type, size))
    return found


def _video_fields(content_type: str, body: bytes) -> tuple[dict[str, Any], FormPart | None]:
    if content_type.startswith("application/json"):
        try:
            fields = json.loads(body)
        except ValueError:
            raise BadRequest("We could not parse the JSON body of your request.") from None
        if not isinstance(fields, dict):
            raise BadRequest("The body must be a JSON object.")
        if isinstance(fields.get("input_reference"), str):
            raise BadRequest(
                "Invalid type for 'input_reference': expected a file, but got a string instead.",
                "input_reference",
                "invalid_type",
            )
        return fields, None
    try:
        parts = parse_multipart(content_type, body)
    except ValueError:
        raise BadRequest("Invalid Content-Type header.") from None
    reference = next((p for p in parts if p.name == "input_reference"), None)
    if reference is not None and reference.filename is None:
        raise BadRequest(
            "Invalid type for 'input_reference': expected a file, but got a string instead.",
            "input_reference",
            "invalid_type",
        )
    return {p.name: p.text for p in parts if p.filename is None}, reference
