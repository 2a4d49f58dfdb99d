"""The paid upload token (step 1 of the 3-step upload flow)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from studio402.catalog.base import Kind, Route, RouteInput
from studio402.catalog.pricing import Flat
from studio402.storage.base import NAME_PATTERN

UploadType = Literal[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
]


class UploadRequest(RouteInput):
    # Exactly the names the blob store takes as a key segment: a slot is never sold for a name its PUT
    # would then refuse.
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)] = Field(
        description="File name: letters, digits, '.', '_', '-', starting with a letter or digit "
        "(no spaces, no '..', no paths)."
    )
    contentType: UploadType


ROUTE = Route(
    "upload",
    "token",
    "Upload - token",
    "Pay for one upload slot; returns a client token.",
    Kind.UPLOAD,
    UploadRequest,
    Flat(10_000),
    "instant",
    5,
    "studio402 blob store",
)
