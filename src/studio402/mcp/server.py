"""The FastMCP server: six tools over StudioTools, on stdio or streamable HTTP."""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import CallToolResult

from studio402.mcp.tools import Mode, StudioTools

INSTRUCTIONS = """Generate images and videos with studio402, paid per call with HTTP 402 micropayments.
Call list_models to see the models and their price ranges, quote for the exact price of a request, then
generate_image or generate_video. {mode}"""

MODES = {
    Mode.WALLET: "This server pays from its own wallet (within its spend limits) and returns the media.",
    Mode.X402: (
        "You pay with your own wallet (x402 MCP transport): a generate call answers with PaymentRequired; "
        "call again with the payment in _meta['x402/payment']. Read the job (job_status, download) with your "
        "SIGN-IN-WITH-X proof for the job URL in _meta['sign-in-with-x']."
    ),
}


def request_meta(ctx: Context[Any, Any, Any]) -> dict[str, Any]:
    meta = ctx.request_context.meta
    return meta.model_dump(by_alias=True, exclude_none=True) if meta is not None else {}


def build_server(tools: StudioTools, *, host: str = "127.0.0.1", port: int = 8000) -> FastMCP[Any]:
    server: FastMCP[Any] = FastMCP(
        "studio402", instructions=INSTRUCTIONS.format(mode=MODES[tools.mode]), host=host, port=port
    )

    @server.tool(description="Every model and operation the server sells, with price ranges in USD.")
    async def list_models() -> CallToolResult:
        return await tools.list_models()

    @server.tool(description="The exact price of a request body (nothing is paid).")
    async def quote(model: str, operation: str, body: dict[str, Any]) -> CallToolResult:
        return await tools.quote(model, operation, body)

    @server.tool(description="Pay for an image, wait for it and return it. `options`: more body fields.")
    async def generate_image(
        ctx: Context[Any, Any, Any],
        prompt: str,
        model: str = "nano-banana",
        operation: str = "generate",
        options: dict[str, Any] | None = None,
        images: list[str] | None = None,
        wait: bool = True,
    ) -> CallToolResult:
        body = {"prompt": prompt, **(options or {}), **({"images": images} if images else {})}
        return await tools.generate(model, operation, body, wait=wait, meta=request_meta(ctx))

    @server.tool(description="Pay for a video, wait for it and return it (file link + thumbnail).")
    async def generate_video(
        ctx: Context[Any, Any, Any],
        prompt: str,
        model: str = "veo-3.1-fast",
        operation: str = "generate",
        options: dict[str, Any] | None = None,
        image: str | None = None,
        wait: bool = True,
    ) -> CallToolResult:
        body = {"prompt": prompt, **(options or {}), **({"image": image} if image else {})}
        return await tools.generate(model, operation, body, wait=wait, meta=request_meta(ctx))

    @server.tool(description="A job's status and result URLs.")
    async def job_status(ctx: Context[Any, Any, Any], job_id: str) -> CallToolResult:
        return await tools.job_status(job_id, request_meta(ctx))

    @server.tool(description="Wait for a job to end, save its files and return them.")
    async def download(ctx: Context[Any, Any, Any], job_id: str, wait: bool = True) -> CallToolResult:
        return await tools.download(job_id, request_meta(ctx), wait=wait)

    return server


Transport = Literal["stdio", "http"]


def run(tools: StudioTools, transport: Transport, *, host: str, port: int) -> None:
    server = build_server(tools, host=host, port=port)
    server.run("stdio" if transport == "stdio" else "streamable-http")
