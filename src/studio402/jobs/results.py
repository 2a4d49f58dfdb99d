"""Generated files into our blob store, checked by content, in the requested format, with video
thumbnails. A job is `complete` only after this succeeded: upstream URLs expire in minutes, ours are
re-signed per poll."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from studio402 import failpoints
from studio402.backends.base import BackendFailure, FailureCode, Output
from studio402.catalog import Kind
from studio402.errors import MediaError
from studio402.media.avprobe import probe_video
from studio402.media.image import encode_image, load_image, probe_image
from studio402.media.video import thumbnail
from studio402.storage.base import BlobStore

_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}
_REQUESTED = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def requested_image_mime(params: Mapping[str, Any]) -> str | None:
    fmt = params.get("output_format")
    return _REQUESTED.get(str(fmt)) if fmt is not None else None


def _primary(outputs: Sequence[Output]) -> Output:
    for output in outputs:
        if output.role == "primary":
            return output
    raise BackendFailure(
        FailureCode.NO_MEDIA, "the backend finished without any media", accepted=True, retryable=False
    )


def _image(data: bytes, want: str | None, metadata: Mapping[str, str]) -> tuple[bytes, Any]:
    info = probe_image(data)
    if want is not None and info.mime != want:
        fmt = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}[want]
        data = encode_image(load_image(data), fmt, metadata=metadata)  # type: ignore[arg-type]
        info = probe_image(data)
    return data, info


async def store_outputs(
    blobs: BlobStore,
    job_id: str,
    kind: Kind,
    params: Mapping[str, Any],
    outputs: Sequence[Output],
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    """Check, convert and store the outputs; the `result` of the job (blob keys and facts)."""
    primary = _primary(outputs)
    try:
        if kind is Kind.VIDEO:
            return await _store_video(blobs, job_id, primary, outputs, metadata)
        data, info = await asyncio.to_thread(_image, primary.data, requested_image_mime(params), metadata)
    except MediaError as exc:
        raise BackendFailure(
            FailureCode.NO_MEDIA,
            f"the backend returned unusable media: {exc.detail}",
            accepted=True,
            retryable=False,
        ) from exc
    key = f"results/{job_id}/image.{_EXT[info.mime]}"
    failpoints.hit("mid_result_copy")
    await blobs.put(key, data, info.mime)
    return {
        "image": {
            "key": key,
            "mime": info.mime,
            "width": info.width,
            "height": info.height,
            "size": len(data),
        }
    }


async def _store_video(
    blobs: BlobStore, job_id: str, primary: Output, outputs: Sequence[Output], metadata: Mapping[str, str]
) -> dict[str, Any]:
    info = await asyncio.to_thread(probe_video, primary.data)
    key = f"results/{job_id}/video.{_EXT.get(info.mime, 'mp4')}"
    await blobs.put(key, primary.data, info.mime)
    thumb = next((o.data for o in outputs if o.role == "thumbnail"), None)
    if thumb is not None:
        thumb_mime = (await asyncio.to_thread(probe_image, thumb)).mime
    else:
        thumb = await asyncio.to_thread(thumbnail, primary.data, fmt="webp", max_side=640, metadata=metadata)
        thumb_mime = "image/webp"
    thumb_key = f"results/{job_id}/thumbnail.{_EXT[thumb_mime]}"
    await blobs.put(thumb_key, thumb, thumb_mime)
    return {
        "video": {
            "key": key,
            "mime": info.mime,
            "width": info.width,
            "height": info.height,
            "duration": round(info.duration_s, 3),
            "fps": round(info.fps, 3),
            "codec": info.codec,
            "size": len(primary.data),
        },
        "thumbnail": {"key": thumb_key, "mime": thumb_mime},
    }
