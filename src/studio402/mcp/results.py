"""MCP tool results: JSON text plus structured content, media as image content or links to saved files."""

from __future__ import annotations

import base64
import json
import mimetypes
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent

from studio402.sdk import StudioError

INLINE_IMAGE_BYTES = 8 * 1024 * 1024  # larger images are linked, not inlined


def ok(
    data: dict[str, Any], *, media: list[Path] | None = None, meta: dict[str, Any] | None = None
) -> CallToolResult:
    content: list[ContentBlock] = [TextContent(type="text", text=json.dumps(data))]
    content.extend(media_blocks(media or []))
    return CallToolResult(content=content, structuredContent=data, isError=False, _meta=meta)


def error(exc: StudioError) -> CallToolResult:
    data = {"error": {"code": exc.code, "detail": exc.detail, "status": exc.status}}
    text = TextContent(type="text", text=f"error ({exc.code}): {exc.detail}")
    return CallToolResult(content=[text], structuredContent=data, isError=True)


def payment_required(required: dict[str, Any]) -> CallToolResult:
    """The x402 MCP transport's 402: an error result carrying PaymentRequired (structured and as text)."""
    text = TextContent(type="text", text=json.dumps(required))
    return CallToolResult(content=[text], structuredContent=required, isError=True)


def media_blocks(files: list[Path]) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    for path in files:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if mime.startswith("image/") and path.stat().st_size <= INLINE_IMAGE_BYTES:
            data = base64.b64encode(path.read_bytes()).decode()
            blocks.append(ImageContent(type="image", data=data, mimeType=mime))
        else:
            uri = path.resolve().as_uri()
            blocks.append(ResourceLink(type="resource_link", uri=uri, name=path.name, mimeType=mime))
    return blocks
