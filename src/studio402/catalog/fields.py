"""Field types shared by the route schemas: prompts, enum choices that also accept numbers, media refs."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


def _number_to_str(value: Any) -> Any:
    """Enum durations are strings ("8"); agents often send 8 or 8.0. Accept integral numbers."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


NumStr = BeforeValidator(_number_to_str)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# Prompts: required, not only whitespace, capped per upstream (OpenAI images take 32k, video APIs ~4k).
_PromptDoc = Field(description="What to generate.")
Prompt4k = Annotated[
    str, StringConstraints(min_length=1, max_length=4000), AfterValidator(_not_blank), _PromptDoc
]
Prompt8k = Annotated[
    str, StringConstraints(min_length=1, max_length=8000), AfterValidator(_not_blank), _PromptDoc
]
Prompt32k = Annotated[
    str, StringConstraints(min_length=1, max_length=32000), AfterValidator(_not_blank), _PromptDoc
]


_DATA_URL_HEAD = re.compile(r"^data:[a-z]+/[a-z0-9.+-]+(;[a-z0-9=.+-]+)*;base64,[A-Za-z0-9+/]", re.I)
_BARE_B64_HEAD = re.compile(r"^[A-Za-z0-9+/]{16,}")
MAX_MEDIA_REF_CHARS = 40_000_000  # a data: URL of ~30 MB


def check_media_ref(value: str) -> str:
    """Syntactic check only: an http(s) URL with a host, a base64 data: URL, or bare base64.

    Whether the media is reachable, allowed and of the right kind is decided by the media resolver
    before any price is quoted."""
    v = value.strip()
    if v[:5].lower() == "data:":
        if not _DATA_URL_HEAD.match(v[:256]):
            raise ValueError("data: URLs must look like data:<type>/<subtype>;base64,<payload>")
        return v
    if v[:8].lower() == "https://" or v[:7].lower() == "http://":
        parts = urlsplit(v)
        if not parts.hostname:
            raise ValueError("URL has no host")
        if parts.username or parts.password:
            raise ValueError("URLs with credentials are not accepted")
        return v
    if _BARE_B64_HEAD.match(v[:64]):
        return v
    raise ValueError("expected an https:// URL (e.g. an upload blobUrl), a data: URL or base64 content")


MediaRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_MEDIA_REF_CHARS),
    AfterValidator(check_media_ref),
    Field(description="Media input: an https URL (e.g. the blobUrl of an upload), a data: URL or base64."),
]


def _check_callback(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("callBackUrl must be an https:// URL")
    if parts.username or parts.password:
        raise ValueError("callBackUrl must not contain credentials")
    return value


CallbackUrl = Annotated[
    str,
    StringConstraints(min_length=9, max_length=2048),
    AfterValidator(_check_callback),
    Field(description="Optional https URL that receives a signed POST when the job ends."),
]

Seed = Annotated[int, Field(ge=0, le=2_147_483_647, description="Random seed for reproducible output.")]
