"""What a media input really is, by content: magic bytes, header facts, then its first frame decoded
(Pillow / PyAV), against the limits of its kind and the request's `DecodeBudget`. Extensions and declared
types are never trusted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from studio402.catalog.fields import MediaKind
from studio402.errors import MediaError
from studio402.media.avprobe import AUDIO_MIMES, VIDEO_MIMES, probe_audio, probe_video
from studio402.media.budget import DecodeBudget
from studio402.media.image import IMAGE_MIMES, check_image
from studio402.media.sniff import sniff

MAX_BYTES = {
    MediaKind.IMAGE: 25 * 1024 * 1024,
    MediaKind.VIDEO: 200 * 1024 * 1024,
    MediaKind.AUDIO: 50 * 1024 * 1024,
}
MAX_IMAGE_PIXELS = 50_000_000
MAX_VIDEO_SECONDS = 120.0
MAX_AUDIO_SECONDS = 600.0
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
}


@dataclass(frozen=True, slots=True)
class MediaFacts:
    kind: MediaKind
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.mime, "bin")


def kind_of(mime: str | None) -> MediaKind | None:
    if mime in IMAGE_MIMES:
        return MediaKind.IMAGE
    if mime in VIDEO_MIMES:
        return MediaKind.VIDEO
    if mime in AUDIO_MIMES:
        return MediaKind.AUDIO
    return None


def inspect(data: bytes, expected: MediaKind | None = None, budget: DecodeBudget | None = None) -> MediaFacts:
    """Identify and check `data`; MediaError (media_kind_mismatch, media_unsupported, media_corrupt,
    media_too_large) when it is not a usable media file of the expected kind. Without a `budget`, only the
    per-file limits bound the work (bytes we already hold for a paid job)."""
    mime = sniff(data)
    kind = kind_of(mime)
    if kind is None or mime is None:
        raise MediaError(
            f"not an image, video or audio file (detected {mime or 'unknown data'})", code="media_unsupported"
        )
    if expected is not None and kind is not expected:
        raise MediaError(
            f"expected {expected.value}, got {kind.value} ({mime})",
            code="media_kind_mismatch",
            expected=expected.value,
            actual=kind.value,
        )
    if len(data) > MAX_BYTES[kind]:
        raise MediaError(f"{kind.value} larger than {MAX_BYTES[kind] // 2**20} MB", code="media_too_large")
    if kind is MediaKind.IMAGE:
        info = check_image(data, max_pixels=MAX_IMAGE_PIXELS, budget=budget)
        return MediaFacts(kind, info.mime, len(data), info.width, info.height)
    if kind is MediaKind.VIDEO:
        video = probe_video(data, max_duration_s=MAX_VIDEO_SECONDS, budget=budget)
        return MediaFacts(kind, video.mime, len(data), video.width, video.height, video.duration_s)
    audio = probe_audio(data, max_duration_s=MAX_AUDIO_SECONDS, budget=budget)
    return MediaFacts(kind, audio.mime, len(data), duration_s=audio.duration_s)


async def inspect_async(
    data: bytes, expected: MediaKind | None = None, budget: DecodeBudget | None = None
) -> MediaFacts:
    """`inspect` off the event loop (decoding takes real CPU)."""
    return await asyncio.to_thread(inspect, data, expected, budget)
