"""Inputs and outputs shared by the task-API adapters (xAI, BytePlus, DashScope) and the model hosts (fal,
Replicate): our verified media as data URIs or signed URLs, the generic mapping of canonical params to a
model host's input (overridable per route in `options.inputs`), and finding and fetching result media.

Generic mapping (model hosts serve any model, so the mapping is a convention plus operator overrides):
  - scalar params: renamed by `rename` (None drops one), else passed on in snake_case (`negativePrompt` ->
    `negative_prompt`); explicit renames win over pass-through names; our own fields (callBackUrl, ...) drop;
  - media: each input goes to the field its *slot* is renamed to (slots: image, input_reference, lastFrame,
    images, referenceImages, audioUrl, audioUrls, and for Seedance-style `urls`: first_frame, last_frame,
    reference_images, reference_videos); list slots give lists. Images go inline as data URIs up to
    `inline_max_bytes` (unless `inline_images` is false), everything else as our signed URL;
  - `integers` casts upstream fields to int, `templates` formats them ("{}s" turns "8" into "8s"), `extra`
    adds fixed fields.
Override example (TOML): `[backends.providers.fal.options.inputs."veo-3.1/generate"]` with
`templates = {duration = "{}s"}`, `rename = {lastFrame = "last_frame_url"}`,
`extra = {generate_audio = true}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from studio402.backends.base import BackendFailure, BackendJob, FailureCode, MediaInput, Output
from studio402.backends.http_common import decode_base64, download, encode_base64, final
from studio402.catalog.fields import MediaKind
from studio402.errors import ConfigError
from studio402.media.sniff import sniff

INLINE_MAX_BYTES = 8 * 1024 * 1024  # bigger images go by signed URL: request bodies have size limits
# Canonical fields holding media references (the verified copies arrive as `job.inputs`).
MEDIA_FIELDS = frozenset(
    {
        "image",
        "input_reference",
        "lastFrame",
        "images",
        "referenceImages",
        "audioUrl",
        "audioUrls",
        "urls",
        "last_image",
    }
)
# Our own fields: they steer the gateway or the mapping, never the model.
INTERNAL_FIELDS = frozenset({"callBackUrl", "urlMediaTypes", "mode", "imageMode", "autoCrop"})
LIST_SLOTS = frozenset({"images", "referenceImages", "audioUrls", "reference_images", "reference_videos"})
_OUTPUT_KEYS = ("video", "videos", "images", "image", "output", "url", "audio")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def task_failure(name: str, error: Mapping[str, Any], moderation: Callable[[str], bool]) -> BackendFailure:
    """A task the upstream failed, as `{code, message}` (BytePlus, DashScope): final; `moderated` when its
    code is a safety refusal."""
    code = str(error.get("code") or "")
    text = f"{name}: {code} {error.get('message') or 'the task failed'}".strip()
    return final(FailureCode.MODERATED if moderation(code) else FailureCode.UPSTREAM_ERROR, text)


def member(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`body[key]` when it is a JSON object, else an empty one (answers are untrusted)."""
    value = body.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def data_uri(media: MediaInput) -> str:
    return f"data:{media.mime};base64,{encode_base64(media.data)}"


def inline_images(options: Mapping[str, Any], default: bool = True) -> bool:
    """`options.inline_images`: small images go inline as data URIs, else as our signed URL."""
    return bool(options.get("inline_images", default))


def media_ref(media: MediaInput, *, inline: bool = True, max_inline: int = INLINE_MAX_BYTES) -> str:
    """A data URI for small images (no fetch needed upstream), else our signed URL."""
    if inline and media.kind is MediaKind.IMAGE and len(media.data) <= max_inline:
        return data_uri(media)
    return media.url


def slot_of(job: BackendJob, media: MediaInput) -> str:
    """The slot a media input fills; Seedance-style `urls` split by mode and kind."""
    name = str(media.loc[0]) if media.loc else ""
    if name != "urls":
        return name
    if job.params.get("mode", "keyframe") == "keyframe":
        return "first_frame" if media.loc[-1] == 0 else "last_frame"
    return "reference_videos" if media.kind is MediaKind.VIDEO else "reference_images"


def snake_case(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _mapping(spec: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = spec.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key} must be a table")
    return dict(value)


@dataclass(frozen=True, slots=True)
class InputMap:
    rename: Mapping[str, str | None]  # canonical field or media slot -> upstream field (None drops it)
    templates: Mapping[str, str] = field(default_factory=dict)  # upstream field -> format string
    integers: frozenset[str] = frozenset()  # upstream fields sent as integers
    extra: Mapping[str, Any] = field(default_factory=dict)  # fixed upstream fields
    inline_images: bool = True
    inline_max_bytes: int = INLINE_MAX_BYTES

    def override(self, spec: Any, where: str) -> InputMap:
        """This map with an operator override (`rename`, `templates`, `integers`, `extra`) applied."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a table")
        unknown = set(spec) - {"rename", "templates", "integers", "extra"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        integers = spec.get("integers", [])
        if not isinstance(integers, list | tuple) or not all(isinstance(i, str) for i in integers):
            raise ConfigError(f"{where}.integers must be a list of field names")
        rename = _mapping(spec, "rename", where)
        # TOML has no null: an empty string drops a field too.
        rename = {k: (v or None) for k, v in rename.items()}
        return replace(
            self,
            rename={**self.rename, **rename},
            templates={**self.templates, **_mapping(spec, "templates", where)},
            integers=self.integers | frozenset(integers),
            extra={**self.extra, **_mapping(spec, "extra", where)},
        )

    def build(self, job: BackendJob) -> dict[str, Any]:
        passthrough: dict[str, Any] = {}
        renamed: dict[str, Any] = {}
        for key, value in job.params.items():
            if key in MEDIA_FIELDS or key in INTERNAL_FIELDS:
                continue
            if key in self.rename:
                target = self.rename[key]
                if target is not None:
                    renamed[target] = value
            else:
                passthrough[snake_case(key)] = value
        body = {**passthrough, **renamed, **self._media(job)}
        return {**{k: self._shape(k, v) for k, v in body.items()}, **self.extra}

    def _media(self, job: BackendJob) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for media in job.inputs:
            slot = slot_of(job, media)
            target = self.rename.get(slot, snake_case(slot))
            if target is None:
                continue
            ref = media_ref(media, inline=self.inline_images, max_inline=self.inline_max_bytes)
            if slot in LIST_SLOTS:
                out.setdefault(target, []).append(ref)
            else:
                out[target] = ref
        return out

    def _shape(self, name: str, value: Any) -> Any:
        if name in self.integers and isinstance(value, str | float) and str(value).lstrip("-").isdigit():
            value = int(value)
        template = self.templates.get(name)
        return template.format(value) if template is not None else value


def input_map(base: InputMap, options: Mapping[str, Any], route_key: str) -> InputMap:
    """The provider's defaults, then `options.inline_*`, then the model's and the route's overrides."""
    max_inline = options.get("inline_max_bytes", base.inline_max_bytes)
    if not isinstance(max_inline, int) or max_inline < 0:
        raise ConfigError("options.inline_max_bytes must be a non-negative integer")
    mapped = replace(
        base,
        inline_images=inline_images(options, base.inline_images),
        inline_max_bytes=max_inline,
    )
    overrides = _overrides(options)
    for key in (route_key.split("/", 1)[0], route_key):
        if key in overrides:
            mapped = mapped.override(overrides[key], f"options.inputs.{key}")
    return mapped


def check_input_options(base: InputMap, options: Mapping[str, Any]) -> None:
    """Fail at start-up, not on a paid job, when an override is malformed."""
    input_map(base, options, "_/_")
    for key in _overrides(options):
        input_map(base, options, key if "/" in key else f"{key}/_")


def _overrides(options: Mapping[str, Any]) -> Mapping[str, Any]:
    overrides = options.get("inputs", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError("options.inputs must be a table of route keys or models")
    return overrides


def media_urls(output: Any, depth: int = 0) -> list[str]:
    """Result media URLs in an answer, primary first: a URL, a list of them, or an object holding them under
    video / videos / images / image / output / url / audio (as fal and Replicate models answer)."""
    if depth > 4:
        return []
    if isinstance(output, str):
        return [output] if output.startswith(("https://", "http://", "data:")) else []
    if isinstance(output, list):
        return [url for item in output for url in media_urls(item, depth + 1)]
    if isinstance(output, Mapping):
        for key in _OUTPUT_KEYS:
            if key in output:
                found = media_urls(output[key], depth + 1)
                if found:
                    return found
    return []


def flagged(output: Any) -> bool:
    """fal's safety checkers answer with blacked-out media and `has_nsfw_concepts: [true]`."""
    if not isinstance(output, Mapping):
        return False
    flags = output.get("has_nsfw_concepts")
    return any(bool(f) for f in flags) if isinstance(flags, list) else bool(flags)


async def fetch_media(client: httpx.AsyncClient, url: str, *, what: str = "the result") -> Output:
    """Download one result (or decode a data: URI). The MIME type comes from the bytes when they say it."""
    if url.startswith("data:"):
        head, _, payload = url.partition(",")
        if ";base64" not in head:
            raise final(FailureCode.UPSTREAM_ERROR, f"{what} is a data: URI without base64")
        data, declared = decode_base64(payload, what), head[5:].split(";")[0]
    elif url.startswith(("https://", "http://")):
        data, content_type = await download(client, url, what=what)
        declared = (content_type or "").split(";")[0].strip()
    else:
        raise final(FailureCode.UPSTREAM_ERROR, f"{what} has no usable URL")
    return Output(data, sniff(data) or declared or "application/octet-stream")
