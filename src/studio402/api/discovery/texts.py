"""llms.txt and agents.txt, rendered from the catalog in the spirit of StableStudio's llms.txt."""

from __future__ import annotations

from typing import Any

from studio402.api.discovery.prices import price_range
from studio402.api.discovery.rails import payment_summary
from studio402.catalog import Route
from studio402.wiring import Wiring


def _schema_line(route: Route) -> str:
    """`{"prompt": "string", "size": "1280x720|720x1280", ...}` with defaults marked."""
    schema = route.input.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        parts.append(f'"{name}": {_type_hint(prop)}' + ("" if name in required else " (optional)"))
    return "{ " + ", ".join(parts) + " }"


def _type_hint(prop: dict[str, Any]) -> str:
    options = prop.get("anyOf", [prop])
    enums = [v for o in options for v in o.get("enum", ())]
    if enums:
        hint = "|".join(str(v) for v in enums)
    else:
        types = [o.get("type", "any") for o in options if o.get("type") != "null"]
        hint = "|".join(
            ("array of " + o.get("items", {}).get("type", "any")) if t == "array" else t
            for o, t in zip(options, types, strict=False)
        )
    default = prop.get("default")
    return f'"{hint}"' + (f" = {default!r}" if default is not None else "")


def render_llms_txt(svc: Wiring) -> str:
    base = svc.settings.public_url
    markup = svc.settings.pricing.markup_bps
    lines = [
        "# studio402 API > AI image/video generation via HTTP 402 micropayments. No API keys. "
        f"Base URL: `{base}`",
        "",
        "Accepted payments:",
        *(f"- {line}" for line in payment_summary(svc)),
        "",
        "## Payment Flow",
        "1. `POST /api/generate/{model}/{operation}` without payment -> `402` with a "
        "`PAYMENT-REQUIRED` header (base64 JSON). Invalid bodies get `400` (problem+json) and are never "
        "charged.",
        "2. Sign one of the `accepts` (USDC transferWithAuthorization) and POST the same body with "
        '`PAYMENT-SIGNATURE` -> `200 {jobId, status: "pending"}` + `PAYMENT-RESPONSE`.',
        "3. Poll `GET /api/jobs/{jobId}` with a `SIGN-IN-WITH-X` header until `complete`.",
        "Retrying the same signed payment with the same body returns the same job; it never charges twice.",
        "`POST /api/quote/{model}/{operation}` returns the price of a body without charging.",
        "",
        "## Routes",
        "| Endpoint | Cost | Time |",
        "| --- | --- | --- |",
    ]
    for route in (*svc.catalog, svc.catalog.upload):
        prices = price_range(route, markup)
        cost = prices.rate_label or prices.label
        lines.append(f"| `{route.path}` | {cost} | {route.eta} |")
    lines += ["", "## Input Schemas", ""]
    for route in svc.catalog:
        lines += [
            f"**{route.model} {route.operation}** ({route.upstream}): {route.summary}",
            "```json",
            _schema_line(route),
            "```",
            "",
        ]
    lines += [
        "## File Upload",
        "1. `POST /api/upload` `{filename, contentType}` (paid, "
        + price_range(svc.catalog.upload, markup).label
        + ") -> `{uploadId, clientToken, pathname, expiresAt, uploadUrl, uploadHeaders, blobUrl}`.",
        "2. `PUT uploadUrl` with exactly the `uploadHeaders` and the bytes. "
        + (
            "Uploads go straight to object storage: send only `content-type`, no Authorization header."
            if svc.uploads_direct
            else "That is `authorization: Bearer <clientToken>` and `x-content-type` -> `{url}`."
        ),
        "3. `POST /api/upload/confirm` `{uploadId, blobUrl}` with `SIGN-IN-WITH-X` -> "
        "`{success, upload: {id, blobUrl}}`. Use the blobUrl in `images`, `image`, `urls` and the other "
        "media fields.",
        "",
        "## Job Polling (SIGN-IN-WITH-X)",
        "`GET /api/jobs/{jobId}`, `GET /api/jobs?limit=20&status=complete`, "
        "`DELETE /api/jobs/{jobId}` (failed jobs), `POST /api/jobs/{jobId}/cancel`, "
        "`GET /api/jobs/{jobId}/events` (SSE). Without a valid header: 402 with the "
        "`sign-in-with-x` extension. Results: `{imageUrl}` or `{videoUrl, thumbnailUrl}`; URLs expire after "
        f"~{svc.settings.storage.url_ttl_seconds // 60} minutes.",
        "Poll every 5 s for most image models, 10 s for gpt-image models, 15 s for video models. "
        "Do not resubmit while a job is pending or loading.",
        "",
        f"OpenAPI 3.1: `{base}/api/openapi.json`. Paid resources: `{base}/.well-known/x402`.",
    ]
    return "\n".join(lines) + "\n"


def render_agents_txt(svc: Wiring) -> str:
    base = svc.settings.public_url
    markup = svc.settings.pricing.markup_bps
    lines = [
        "# agents.txt - studio402",
        f"service: {base}",
        "auth: none (pay per call with HTTP 402)",
        *(f"payment: {line}" for line in payment_summary(svc)),
        "job-auth: SIGN-IN-WITH-X (CAIP-122 / EIP-4361 wallet signature)",
        f"openapi: {base}/api/openapi.json",
        f"llms: {base}/llms.txt",
        f"x402: {base}/.well-known/x402",
        "",
        "# method path | price | typical time | kind | description",
    ]
    for route in (*svc.catalog, svc.catalog.upload):
        cost = price_range(route, markup).label_with_rate
        lines.append(
            f"POST {route.path} | {cost} | {route.eta} | {route.kind.value} | {route.title}: {route.summary}"
        )
    lines += [
        "GET /api/jobs/{jobId} | free | - | job | poll a job (SIGN-IN-WITH-X)",
        "GET /api/jobs | free | - | job | list your jobs (SIGN-IN-WITH-X)",
    ]
    return "\n".join(lines) + "\n"
