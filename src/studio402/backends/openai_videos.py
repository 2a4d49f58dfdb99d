"""OpenAI Videos API adapter (sora-2, sora-2-pro). RETIRED upstream on 2026-09-24 (providers.md §0): the
documented contract is kept, but the adapter is off unless `options.allow_retired = true`.

    create  POST /videos (multipart, as the SDK sends it): prompt, model, seconds, size, input_reference file
    poll    GET /videos/{id}: queued | in_progress | completed | failed, `progress`, `openai-poll-after-ms`
    result  GET /videos/{id}/content?variant=video (MP4) and variant=thumbnail (WebP, best effort)

OpenAI documents no cancel (DELETE only removes a video), so `cancel` does nothing. The reference image must
match `size` exactly upstream: it is fitted here (cropped with `autoCrop`, else letterboxed)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from PIL import Image, ImageOps

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    BackendFailure,
    BackendJob,
    FailureCode,
    Output,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.http_common import (
    Part,
    download,
    final,
    form_parts,
    json_object,
    media_inputs,
    send,
)
from studio402.backends.openai_common import (
    DEFAULT_BASE,
    PROBE_PATH,
    auth_headers,
    is_moderation,
    openai_failure,
)
from studio402.errors import MediaError
from studio402.media.image import encode_image, load_image, probe_image

log = logging.getLogger(__name__)

DEFAULT_MODELS: Mapping[str, str] = {"sora-2": "sora-2", "sora-2-pro": "sora-2-pro"}
ROUTES = frozenset(f"{m}/generate" for m in DEFAULT_MODELS)
RETIRED_ON = "2026-09-24"
POLL_AFTER_MS = "openai-poll-after-ms"
ACCEPT_BINARY = {"Accept": "application/binary"}
VIDEO_ID = re.compile(r"[\w-]{1,128}")  # ids go into our URL paths: nothing else gets there


class VideoStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


def fit_reference(data: bytes, size: str, crop: bool) -> bytes:
    """The reference image at exactly `size` ("1280x720"): cropped to cover, or letterboxed in black."""
    width, height = (int(v) for v in size.split("x"))
    img = load_image(data).convert("RGB")
    if img.size == (width, height):
        return encode_image(img, "png")
    if crop:
        fitted = ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS)
    else:
        fitted = ImageOps.pad(img, (width, height), Image.Resampling.LANCZOS, color=(0, 0, 0))
    return encode_image(fitted, "png")


def create_fields(job: BackendJob, model: str) -> dict[str, str]:
    p = job.params
    return {
        "model": model,
        "prompt": str(p["prompt"]),
        "seconds": str(p.get("seconds", "4")),
        "size": str(p.get("size", "720x1280")),
    }


async def create_parts(job: BackendJob, model: str) -> list[Part]:
    fields = create_fields(job, model)
    parts = form_parts(fields)
    refs = media_inputs(job, "input_reference")
    if refs:
        crop = bool(job.params.get("autoCrop", True))
        png = await asyncio.to_thread(fit_reference, refs[0].data, fields["size"], crop)
        parts.append(("input_reference", ("reference.png", png, "image/png")))
    return parts


def poll_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers[POLL_AFTER_MS]) / 1000)
    except (KeyError, ValueError):
        return None


def failed(video: Mapping[str, Any]) -> BackendFailure:
    raw = video.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    detail = f"the upstream failed the video ({error.get('code') or 'no code'}): {error.get('message')}"
    code = FailureCode.MODERATED if is_moderation(error) else FailureCode.UPSTREAM_ERROR
    return final(code, detail)


class OpenAIVideosBackend(UpstreamAdapter):
    default_url = DEFAULT_BASE
    default_models = DEFAULT_MODELS
    routes = ROUTES
    probe_path = PROBE_PATH
    retired_on = RETIRED_ON  # shown by `backends check`

    def _headers(self) -> dict[str, str]:
        return auth_headers(self._settings)

    def missing_settings(self) -> list[str]:
        missing = super().missing_settings()
        if self._settings.options.get("allow_retired") is not True:
            missing.append(f"options.allow_retired (the OpenAI Videos API was retired on {RETIRED_ON})")
        return missing

    async def submit(self, job: BackendJob) -> Submitted:
        model = self._model(job)
        resp = await send(
            self._client,
            "POST",
            "videos",
            creates=True,
            headers=auth_headers(self._settings),
            files=await create_parts(job, model),
        )
        if resp.status_code != 200:
            raise openai_failure(resp, accepted=False)
        video_id = json_object(resp, accepted=True, retryable=False).get("id")
        if not isinstance(video_id, str) or not VIDEO_ID.fullmatch(video_id):
            raise final(FailureCode.UPSTREAM_ERROR, f"unusable video id {video_id!r}")
        return Submitted(video_id)

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        if not VIDEO_ID.fullmatch(upstream_id):
            raise final(FailureCode.NOT_FOUND, "not a video id")
        resp = await send(
            self._client, "GET", f"videos/{upstream_id}", accepted=True, headers=auth_headers(self._settings)
        )
        if resp.status_code != 200:
            raise openai_failure(resp, accepted=True)
        video = json_object(resp, accepted=True)
        status, progress = video.get("status"), _progress(video)
        hint = poll_after(resp.headers)
        if status == VideoStatus.COMPLETED:
            return Poll(UpstreamStatus.SUCCEEDED, 100, await self._outputs(upstream_id))
        if status == VideoStatus.FAILED:
            raise failed(video)
        if status == VideoStatus.QUEUED:
            return Poll(UpstreamStatus.QUEUED, progress, poll_after=hint)
        if status != VideoStatus.IN_PROGRESS:
            log.warning("%s: unknown video status %r for %s; still waiting", self.name, status, upstream_id)
        return Poll(UpstreamStatus.RUNNING, progress, poll_after=hint)

    async def _outputs(self, upstream_id: str) -> tuple[Output, ...]:
        headers = {**auth_headers(self._settings), **ACCEPT_BINARY}
        video, _ = await download(
            self._client, f"videos/{upstream_id}/content?variant=video", headers=headers, what="the video"
        )
        outputs = [Output(video, "video/mp4")]
        try:  # best effort: without one, the runner makes a thumbnail from the video
            thumb, _ = await download(
                self._client,
                f"videos/{upstream_id}/content?variant=thumbnail",
                headers=headers,
                what="the thumbnail",
            )
            info = await asyncio.to_thread(probe_image, thumb)
        except (BackendFailure, MediaError) as exc:
            log.info("%s: no usable thumbnail for %s (%s)", self.name, upstream_id, exc.detail)
        else:
            outputs.append(Output(thumb, info.mime, role="thumbnail"))
        return tuple(outputs)

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None  # the Videos API has no cancel; DELETE would only remove the record


def _progress(video: Mapping[str, Any]) -> int | None:
    value = video.get("progress")
    return max(0, min(100, int(value))) if isinstance(value, int | float) else None
