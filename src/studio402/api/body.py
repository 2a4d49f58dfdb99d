"""Reading request bodies: size-capped, JSON only, errors as problems (never a 500)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from studio402.errors import InputError, PayloadTooLarge

MAX_JSON_BYTES = 48 * 1024 * 1024  # data: URLs of media inputs make bodies large


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int = MAX_JSON_BYTES) -> Any:
    raw = await read_bytes(request, max_bytes)
    request.state.raw_body = raw  # the stream is consumed: MPP challenges bind its digest later
    if not raw.strip():
        raise InputError("the request needs a JSON body", code="invalid_json")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise InputError(f"the body is not valid JSON: {e}", code="invalid_json") from None
