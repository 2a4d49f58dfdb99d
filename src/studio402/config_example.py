"""The commented example config that `studio402 init` writes, generated from the settings model.

Every field of `Settings` is written, in model order: keys with a default as `key = default`; keys without
one (or whose default is empty) as a commented example; optional sections (`[storage.s3]`), lists of tables
(`[[payments.networks]]`) and named tables (`[backends.providers.<name>]`) as one commented example entry.
The comment above a key is its `Field(description=...)`, else its note below. A new setting therefore shows
up in the file by itself; tests/unit/test_config_example.py asks for a note (or a description) and for an
example when it has no default.
"""

from __future__ import annotations

import json
import re
import types
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from studio402.config import Settings

_HEADER = """\
# studio402 configuration, written by `studio402 init`. Every key is optional; the values shown are the
# defaults, and commented keys are examples of settings that are off by default.
# Any key can be overridden from the environment: STUDIO402_<SECTION>__<KEY> (nested keys joined by `__`),
# e.g. STUDIO402_SERVER__PORT=9000, STUDIO402_PRICING__MARKUP_BPS=1500, STUDIO402_DATA_DIR=/var/lib/studio402.
# Values parse as JSON when they can (numbers, booleans, lists, tables), so secrets need not be in this file:
# STUDIO402_PAYMENTS__NETWORKS='[{...}]', STUDIO402_BACKENDS__PROVIDERS__FAL__API_KEY=...
"""

# Comments, by dotted path (entries of lists and named tables do not add a path segment).
NOTES: dict[str, str] = {
    "data_dir": "All state (database, blobs, devnet chain, secrets) lives under this folder.\n"
    "Two instances with two data dirs share nothing.",
    "server.host": "Interface and port the API listens on.",
    "server.public_url": "The origin clients use to reach this server (SIWX domain, signed URLs, 402 resource"
    " URLs).\nDefaults to http://<host>:<port>. Set it to your public https origin in production.",
    "server.cors_origins": "Browser apps on other origins allowed to call the API (CORS); empty: no CORS"
    " headers at all.",
    "admin.token": "Bearer token of the operator dashboard (/admin); unset: no dashboard (404).\nPrefer"
    " STUDIO402_ADMIN__TOKEN.",
    "admin.metrics_token": "Bearer token Prometheus must send to /metrics (its scrape config's"
    " `authorization`);\nunset: /metrics is open to whoever reaches it."
    " Prefer STUDIO402_ADMIN__METRICS_TOKEN.",
    "admin.metrics_cache_seconds": "Seconds a /metrics rendering is reused: a flood of scrapes costs the"
    " database one read per period.",
    "pricing.markup_bps": "Markup on every catalog price, in basis points: 1500 = +15 %. Prices round up to"
    " a micro-dollar.",
    "payments.max_timeout_seconds": "How long a signed payment authorization may stay valid (x402"
    " maxTimeoutSeconds).",
    "payments.refund": "What happens to the money of a job that fails, is moderated, or is canceled before"
    ' it starts:\n"onchain" (transfer back from the refund wallet), "credit" (spent on the payer\'s next'
    ' call), "none".',
    "payments.settle_timeout_seconds": "How long a paid request waits for its settlement receipt; after that"
    " it answers 202\n`settling` and the reconciler finishes the settlement.",
    "payments.reconcile_every_seconds": "How often every process resolves interrupted settlements and"
    " refunds.",
    "payments.networks": "x402 payment offers, one table each. With none configured, the embedded devnet"
    " (below) is the only offer.\nKeep keys out of this file: STUDIO402_PAYMENTS__NETWORKS takes the same"
    " list as JSON.",
    "payments.networks.network": "CAIP-2 chain id (Base mainnet here; Base Sepolia is eip155:84532).",
    "payments.networks.asset": "The EIP-3009 stablecoin contract (USDC on Base here).",
    "payments.networks.asset_name": 'EIP-712 domain name of the token ("USDC" on Base Sepolia).',
    "payments.networks.asset_version": "EIP-712 domain version of the token.",
    "payments.networks.decimals": "Token decimals.",
    "payments.networks.pay_to": "Where payments go.",
    "payments.networks.rpc_url": "JSON-RPC endpoint used to settle, watch receipts and refund.",
    "payments.networks.settler_key": "Private key that pays gas to settle (transferWithAuthorization).",
    "payments.networks.refund_key": "Private key that sends on-chain refunds (holds some of the token).",
    "payments.networks.facilitator_url": "A remote x402 facilitator settles instead of our settler key.",
    "payments.tempo": 'MPP `charge` on Tempo (WWW-Authenticate: Payment, method "tempo"), beside the x402'
    " offers.",
    "payments.tempo.rpc_url": "Tempo JSON-RPC endpoint.",
    "payments.tempo.chain_id": "Tempo mainnet (Moderato testnet: 42431).",
    "payments.tempo.currency": "TIP-20 token charged: USDC.e on mainnet (6 decimals).",
    "payments.tempo.recipient": "Where MPP payments go.",
    "payments.tempo.realm": "The service's host name, named in every challenge.",
    "payments.tempo.secret_key": "Binds challenges (HMAC): >= 32 bytes, the same on every replica.\nPrefer"
    " STUDIO402_PAYMENTS__TEMPO__SECRET_KEY.",
    "payments.tempo.challenge_ttl_seconds": "How long an MPP challenge may be answered.",
    "devnet.enabled": "The local chain of the embedded default: anvil (installed by the setup command) with"
    " our test USDC.\nUsed only when no [[payments.networks]] is configured.",
    "devnet.chain_id": "Chain id and EIP-712 domain of the devnet's test token.",
    "devnet.anvil_bin": "Path to the anvil binary; by default the one the setup command installed under"
    " .tools/.",
    "devnet.demo_funds_usd": "Test dollars minted to the demo payer wallet when the devnet is created.",
    "devnet.block_time_seconds": "0 = automine: every transaction is mined at once in its own block. N > 0:"
    " a block every N seconds,\nas on a real chain. A devnet still running in the other mode is restarted if"
    " nothing else uses it;\notherwise starting fails and says who uses it.",
    "devnet.tempo": "Also run a local Tempo chain (anvil --network tempo, pathUSD) for MPP payments.",
    "devnet.solana": "Also run a Solana devnet (LiteSVM behind a local JSON-RPC server) for x402 on Solana.",
    "storage.backend": '"local": files under <data_dir>/blobs; "s3": an S3-compatible bucket (see'
    " [storage.s3] below).",
    "storage.url_ttl_seconds": "Lifetime of the signed result URLs returned on each poll.",
    "storage.result_retention_days": "How long stored files are kept, in days (0 = forever). See"
    " docs/storage.md.",
    "storage.media_retention_days": "Media inputs copied from URLs or data: URLs.",
    "storage.unpaid_media_retention_hours": "Media inputs checked for a 402 or a quote that nobody paid for"
    " yet (unpaid/), in hours.",
    "storage.s3": 'An S3-compatible bucket, used when storage.backend = "s3" (docs/storage.md).',
    "storage.s3.endpoint_url": "For MinIO, R2, Ceph...; omit for AWS S3.",
    "storage.s3.path_style": "Custom endpoints use path-style URLs unless false; AWS S3 uses virtual-host"
    " style.",
    "storage.s3.access_key_id": "Credentials; if omitted, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /"
    " AWS_SESSION_TOKEN are used.",
    "storage.s3.prefix": "Every key is stored under this prefix.",
    "storage.s3.direct_uploads": "Uploads go straight to the bucket with a presigned PUT (false: through the"
    " app).",
    "database.url": "SQLAlchemy URL. Default: a SQLite file in the data dir. Scale-out (several processes):"
    " PostgreSQL.",
    "jobs.workers": "Concurrent jobs of the in-process worker pool; 0 = an API-only process (workers run"
    " elsewhere).",
    "jobs.lease_seconds": "A running job's lease; a job whose lease runs out is taken over by another"
    " worker.",
    "jobs.queue_heartbeat_seconds": "Scale-out queue (procrastinate, with a PostgreSQL database.url): a"
    " worker's heartbeat period.",
    "jobs.queue_stalled_seconds": "A worker silent this long is dead: its jobs are retried.",
    "jobs.queue_sweep_seconds": "Period of the stalled/orphan job sweep (1-59 s).",
    "jobs.queue_poll_seconds": "How often workers fetch jobs when a notification was missed.",
    "jobs.failpoints": 'Chaos tests only: "point=probability,..." makes the process SIGKILL itself there.',
    "backends": "Each model is served by a chain of providers: the primary, then fallbacks used only when"
    " the primary refused\nbefore accepting the job. `studio402 backends check` shows what serves each"
    " route.",
    "backends.default": 'Chain used by every route without its own ("preview" is the built-in fake).',
    "backends.routes": "Route key or model -> chain of provider names, primary first.",
    "backends.providers": "One table per upstream account, named as you like (the names used in chains).",
    "backends.providers.type": "Adapter: openai-images, openai-videos, gemini, vertex-veo, bfl, xai,"
    " byteplus, dashscope, fal, replicate.",
    "backends.providers.api_key": "Prefer STUDIO402_BACKENDS__PROVIDERS__<NAME>__API_KEY.",
    "backends.providers.base_url": "Another endpoint for the adapter's API (a proxy, a region).",
    "backends.providers.timeout_seconds": "How long one upstream job may take.",
    "backends.providers.enabled": "false: the provider is skipped in every chain.",
    "backends.providers.models": "Route key or model -> upstream model id / endpoint / version.",
    "backends.providers.options": "Adapter-specific options (project, location, accepts, runs, ...).",
    "media.allow_http": "Media inputs given as URLs are downloaded (SSRF-safe) and checked before the price"
    " is quoted.\nhttp:// media URLs are refused unless this is true.",
    "media.fetch_timeout_seconds": "Limits of one media download.",
    "media.allowed_networks": "Private ranges media may come from (an internal CDN); cloud metadata addresses"
    " stay refused.",
    "media.max_request_megapixels": "Work one request may cause before it is paid: pixels and frames over"
    " all its media inputs.",
    "media.unpaid_fetches_per_minute": "Remote downloads an unpaid request (402, quote) may start, per"
    " client address and minute (0 = no limit).",
}

# Values shown for keys without a default, or whose default (None, empty) shows nothing useful.
EXAMPLES: dict[str, Any] = {
    "server.public_url": "https://studio.example.com",
    "server.cors_origins": ["https://app.example.com"],
    "admin.token": "...",
    "admin.metrics_token": "...",
    "payments.networks.network": "eip155:8453",
    "payments.networks.asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    "payments.networks.asset_name": "USD Coin",
    "payments.networks.pay_to": "0xYourAddress",
    "payments.networks.rpc_url": "https://mainnet.base.org",
    "payments.networks.settler_key": "0x...",
    "payments.networks.refund_key": "0x...",
    "payments.networks.facilitator_url": "https://x402.org/facilitator",
    "payments.tempo.rpc_url": "https://rpc.tempo.xyz",
    "payments.tempo.recipient": "0xYourAddress",
    "payments.tempo.realm": "studio.example.com",
    "payments.tempo.secret_key": "at-least-32-bytes-of-random-secret-text",
    "devnet.anvil_bin": "/usr/local/bin/anvil",
    "storage.s3.bucket": "my-studio402",
    "storage.s3.endpoint_url": "https://<account>.r2.cloudflarestorage.com",
    "storage.s3.path_style": True,
    "storage.s3.access_key_id": "...",
    "storage.s3.secret_access_key": "...",
    "storage.s3.session_token": "...",
    "storage.s3.prefix": "studio402/",
    "database.url": "postgresql+asyncpg://studio402@127.0.0.1/studio402",
    "backends.routes": {"nano-banana": ["gemini", "fal"]},
    "backends.providers.type": "fal",
    "backends.providers.api_key": "...",
    "backends.providers.base_url": "https://queue.fal.run",
    "backends.providers.models": {"nano-banana/generate": "fal-ai/nano-banana-2"},
    "backends.providers.options": {"accepts": {"fal-ai/nano-banana-2": ["prompt", "image_urls"]}},
    "media.allowed_networks": ["10.20.0.0/16"],
}

# The name of the one example entry of a named-table section.
ENTRY_NAMES: dict[str, str] = {"backends.providers": "fal"}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MISSING = object()


def example_config() -> str:
    """The whole file, ending with a newline."""
    lines = [*_HEADER.splitlines(), ""]
    _table(lines, Settings, "", header=None, commented=False)
    return "\n".join(lines).rstrip("\n") + "\n"


def model_kind(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """How a field holding settings models is written: "table", "optional", "array" or "named"."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table", annotation
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            return "optional", inner[0]
    if origin in (tuple, list) and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return "array", args[0]
    if origin is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return "named", args[1]
    return None


def _table(
    lines: list[str], model: type[BaseModel], path: str, *, header: str | None, commented: bool
) -> None:
    if header is not None:
        lines.append("")
        _comment(lines, NOTES.get(path, ""))
        lines.append(("# " if commented else "") + header)
    nested: list[tuple[str, FieldInfo, tuple[str, type[BaseModel]]]] = []
    for name, field in model.model_fields.items():
        kind = model_kind(field.annotation)
        if kind is not None:
            nested.append((name, field, kind))
        else:
            _key(lines, name, field, _join(path, name), commented)
    for name, _field, (how, sub) in nested:
        sub_path = _join(path, name)
        if how == "table":
            _table(lines, sub, sub_path, header=f"[{sub_path}]", commented=commented)
        elif how == "optional":
            _table(lines, sub, sub_path, header=f"[{sub_path}]", commented=True)
        elif how == "array":
            _table(lines, sub, sub_path, header=f"[[{sub_path}]]", commented=True)
        else:
            entry = f"{sub_path}.{_toml_key(ENTRY_NAMES.get(sub_path, 'name'))}"
            _table(lines, sub, sub_path, header=f"[{entry}]", commented=True)


def _key(lines: list[str], name: str, field: FieldInfo, path: str, commented: bool) -> None:
    default = _MISSING if field.is_required() else field.get_default(call_default_factory=True)
    example = EXAMPLES.get(path, _MISSING)
    _comment(lines, field.description or NOTES.get(path, ""))
    if example is not _MISSING:
        lines.append(f"# {_toml_key(name)} = {_toml(example)}")
    elif default is _MISSING or default is None:
        lines.append(f"# {_toml_key(name)} = ...")  # no example: tests/unit/test_config_example.py fails
    else:
        lines.append(("# " if commented else "") + f"{_toml_key(name)} = {_toml(default)}")


def _comment(lines: list[str], text: str) -> None:
    lines.extend(f"# {line}".rstrip() for line in text.splitlines())


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml(value: Any) -> str:
    """One TOML value (strings as JSON strings: the escapes JSON writes are TOML's too)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML spelling for {type(value).__name__}")
