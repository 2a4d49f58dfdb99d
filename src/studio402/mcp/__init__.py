"""`studio402 mcp`: an MCP server for agents over the SDK (tools: list_models, quote, generate_image,
generate_video, job_status, download). It pays from its own wallet within spend limits, or follows the x402
MCP transport so that an agent holding its own wallet pays itself."""
