"""Settings, read once at start-up from a TOML file plus `STUDIO402_*` environment overrides.

This is the only module that reads the environment. Nested keys use `__`:
`STUDIO402_SERVER__PORT=9000`, `STUDIO402_PRICING__MARKUP_BPS=1500`. Values are parsed as JSON when they
parse (numbers, booleans, lists), else taken as strings. `STUDIO402_CONFIG` names the TOML file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from studio402.errors import ConfigError

ENV_PREFIX = "STUDIO402_"
DEFAULT_DATA_DIR = Path(".studio402")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefundMethod(StrEnum):
    ONCHAIN = "onchain"  # ERC-20 transfer back from the operator's refund wallet
    CREDIT = "credit"  # a balance on the payer's address, spent on their next paid call
    NONE = "none"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_public_url(url: str) -> str:
    """`scheme://host[:port][/path]` in one spelling (lower-case host, no default port, no trailing slash):
    resource URLs, signed URLs and SIGN-IN-WITH-X URIs are compared as strings."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"public URL must be an absolute http(s) URL: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        # Not echoed: the credentials would land in an error message and a log.
        raise ValueError("public URL must not carry credentials, a query or a fragment")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = parts.port
    authority = host if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
    return f"{parts.scheme}://{authority}{parts.path.rstrip('/')}"


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8402, ge=0, le=65535)
    # The origin clients use to reach us. SIWX domains and signed URLs derive from it, never from Host.
    public_url: str | None = None
    # Browser apps on other origins allowed to call the API (CORS), e.g. ["https://app.example.com"];
    # empty: no CORS headers at all. The payment headers are exposed so such apps can read a 402.
    cors_origins: tuple[str, ...] = ()

    @field_validator("public_url")
    @classmethod
    def _canonical(cls, v: str | None) -> str | None:
        return canonical_public_url(v) if v is not None else None


class PricingSettings(_Section):
    # Operator markup on every catalog price, in basis points (1500 = +15 %).
    markup_bps: int = Field(0, ge=0, le=1_000_000)


class NetworkSettings(_Section):
    """One payment offer: an EIP-3009 stablecoin on an EVM network."""

    network: str  # CAIP-2, e.g. "eip155:8453"
    asset: str
    asset_name: str  # EIP-712 domain name ("USD Coin" on Base, "USDC" on Base Sepolia)
    asset_version: str = "2"
    decimals: int = Field(6, ge=0, le=36)
    pay_to: str
    rpc_url: str | None = None
    settler_key: SecretStr | None = None  # pays gas for transferWithAuthorization
    refund_key: SecretStr | None = None  # sends on-chain refunds
    facilitator_url: str | None = None  # remote x402 facilitator instead of our settler

    @field_validator("network")
    @classmethod
    def _caip2(cls, v: str) -> str:
        ns, _, ref = v.partition(":")
        if ns != "eip155" or not ref.isdigit():
            raise ValueError("network must be CAIP-2 'eip155:<chain id>'")
        return v


class TempoSettings(_Section):
    """`[payments.tempo]`: MPP `charge` on Tempo in production (absent: none, or the Tempo devnet)."""

    rpc_url: str
    chain_id: int = Field(4217, ge=1)  # Tempo mainnet; Moderato testnet is 42431
    currency: str = "0x20C000000000000000000000b9537d11c60E8b50"  # USDC.e on mainnet (6 decimals)
    recipient: str
    realm: str  # the service's host name, e.g. "studio.example.com"
    secret_key: SecretStr  # >= 32 bytes; binds challenges (HMAC): shared by every replica
    challenge_ttl_seconds: int = Field(300, ge=30, le=3600)

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value().encode()) < 32:
            raise ValueError("payments.tempo.secret_key must be at least 32 bytes")
        return v


class PaymentSettings(_Section):
    # Empty: the embedded devnet is the only offer.
    networks: tuple[NetworkSettings, ...] = ()
    tempo: TempoSettings | None = None  # [payments.tempo]: MPP charge on Tempo
    max_timeout_seconds: int = Field(300, ge=30, le=86_400)
    refund: RefundMethod = RefundMethod.ONCHAIN
    settle_timeout_seconds: float = Field(30.0, gt=0)
    # How often every process resolves interrupted settlements and refunds (each step is a compare-and-set).
    reconcile_every_seconds: float = Field(15.0, gt=0)


class DevnetSettings(_Section):
    enabled: bool = True
    chain_id: int = Field(31337, ge=1)
    token_name: str = "USD Coin"
    token_symbol: str = "USDC"
    token_version: str = "2"
    anvil_bin: str | None = None
    demo_funds_usd: str = "100"
    # 0: automine (a block per transaction, at once); N > 0: a block every N s, like a real chain.
    block_time_seconds: float = Field(0, ge=0)
    tempo: bool = False  # also run a Tempo devnet (anvil --network tempo) for MPP charges
    solana: bool = False  # also run a Solana devnet (LiteSVM behind a local JSON-RPC server)


class StorageBackend(StrEnum):
    LOCAL = "local"  # files under <data_dir>/blobs, served by the app under signed URLs
    S3 = "s3"  # an S3-compatible bucket, presigned URLs (the scale-out store)


class S3Settings(_Section):
    bucket: str
    region: str = "us-east-1"
    # MinIO, R2, Ceph, ...: path-style addressing unless `path_style = false`. None: AWS S3.
    endpoint_url: str | None = None
    path_style: bool | None = None
    # Unset: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment.
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    prefix: str = ""  # every key is stored under this prefix ("studio402/")
    # Uploads go straight to the bucket with a presigned PUT; false: through the app (PUT uploadUrl
    # with the Bearer client token, as with local storage).
    direct_uploads: bool = True


class StorageSettings(_Section):
    backend: StorageBackend = StorageBackend.LOCAL
    s3: S3Settings | None = None
    url_ttl_seconds: int = Field(1200, ge=30, le=7 * 86_400)
    # How long stored files are kept (0 = forever); a janitor pass deletes older ones hourly.
    result_retention_days: float = Field(30, ge=0)
    upload_retention_days: float = Field(7, ge=0)
    media_retention_days: float = Field(7, ge=0)  # media inputs copied from URLs / data: URLs
    # The same inputs while no job has paid for them (a 402 or a quote that was never paid; `unpaid/`).
    unpaid_media_retention_hours: float = Field(1, ge=0)

    @model_validator(mode="after")
    def _s3_complete(self) -> StorageSettings:
        if self.backend is StorageBackend.S3:
            if self.s3 is None:
                raise ValueError("backend 's3' needs a [storage.s3] section with at least `bucket`")
            if not self.s3.access_key_id or self.s3.secret_access_key is None:
                raise ValueError(
                    "storage.s3 needs credentials: access_key_id and secret_access_key "
                    "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                )
        return self


class MediaSettings(_Section):
    # Media inputs given as URLs are downloaded (SSRF-safe) before the price is quoted.
    allow_http: bool = False  # http:// media URLs (https only by default)
    fetch_timeout_seconds: float = Field(30.0, gt=0)
    max_fetch_mb: int = Field(200, ge=1)
    # Extra address ranges media may be fetched from even though they are private (an internal CDN);
    # cloud metadata addresses stay refused whatever this says.
    allowed_networks: tuple[str, ...] = ()
    # Decode work one request may cost before it is paid, over all its media inputs (only first frames
    # are decoded, JPEG at 1/8 scale): more is a 400 media_too_large. WebP, the slowest, decodes ~20 MP/s.
    max_request_megapixels: float = Field(16.0, gt=0)
    max_request_frames: int = Field(50_000, ge=1)  # frames and packets walked (demuxing is cheap)
    # Remote media downloads an unpaid request (a 402, /api/quote) may start, per client address and minute
    # (429 + Retry-After beyond); 0 = no limit. The client is the peer address: uvicorn takes
    # X-Forwarded-For only from the proxies in FORWARDED_ALLOW_IPS (default 127.0.0.1).
    unpaid_fetches_per_minute: int = Field(30, ge=0)


class DatabaseSettings(_Section):
    url: str | None = None  # None: SQLite file in the data dir
    # PostgreSQL connections per process: kept open, and extra ones opened under bursts. Size them so
    # that (processes x (pool_size + max_overflow + 4 for a worker's queue)) stays under max_connections.
    pool_size: int = Field(10, ge=1, le=200)
    max_overflow: int = Field(20, ge=0, le=200)


class ProviderSettings(_Section):
    """One upstream account: an adapter type, its credentials, and which upstream model serves what."""

    type: str  # adapter type, see studio402.backends.factory.ADAPTERS
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout_seconds: float = Field(600.0, gt=0)
    enabled: bool = True
    # Route key ("sora-2/generate") or model ("sora-2") -> upstream model id / endpoint / version.
    models: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)  # adapter-specific (project, location, ...)


class BackendSettings(_Section):
    # Chain used by every route without its own: primary first, then fallbacks.
    default: tuple[str, ...] = ("preview",)
    # Route key or model -> chain of provider names (e.g. "nano-banana" = ["gemini", "fal"]).
    routes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)


class JobSettings(_Section):
    # Concurrent jobs of this process; 0 makes an API-only process (scale-out: workers run elsewhere).
    workers: int = Field(2, ge=0, le=256)
    lease_seconds: float = Field(30.0, gt=0)
    # Scale-out queue (procrastinate, with a PostgreSQL database.url): how fast trouble is noticed.
    queue_heartbeat_seconds: float = Field(10.0, gt=0)  # a worker's heartbeat
    queue_stalled_seconds: float = Field(30.0, gt=0)  # a silent worker is dead: its jobs are retried
    queue_sweep_seconds: int = Field(15, ge=1, le=59)  # period of the stalled/orphan sweep
    queue_poll_seconds: float = Field(5.0, gt=0)  # fetch fallback when a notification is missed
    # Chaos tests only: "point=probability,..." makes the process SIGKILL itself there (failpoints.py).
    failpoints: str = ""


class AdminSettings(_Section):
    # Bearer token of the operator dashboard (/admin); unset: no dashboard (404).
    token: SecretStr | None = None
    # Bearer token Prometheus must send to /metrics; unset: /metrics is open to whoever reaches it.
    metrics_token: SecretStr | None = None
    # Seconds a /metrics rendering is reused: bounds what a flood of scrapes costs the database.
    metrics_cache_seconds: float = Field(default=2.0, ge=0)


class Settings(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    server: ServerSettings = ServerSettings()
    pricing: PricingSettings = PricingSettings()
    payments: PaymentSettings = PaymentSettings()
    devnet: DevnetSettings = DevnetSettings()
    storage: StorageSettings = StorageSettings()
    database: DatabaseSettings = DatabaseSettings()
    jobs: JobSettings = JobSettings()
    backends: BackendSettings = BackendSettings()
    media: MediaSettings = MediaSettings()
    admin: AdminSettings = AdminSettings()

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def uses_devnet(self) -> bool:
        return not self.payments.networks and self.devnet.enabled

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with top-level or dotted (`server.port`) keys replaced, validated again."""
        data = self.model_dump(mode="python")
        for key, value in changes.items():
            _set_path(data, key.split("."), value)
        return _validate(data)


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the configuration once: TOML file, then environment, then explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    path = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    for name, raw in env.items():
        if name.startswith(ENV_PREFIX) and name != ENV_PREFIX + "CONFIG":
            keys = name[len(ENV_PREFIX) :].lower().split("__")
            _set_path(data, keys, _parse_env_value(raw))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, key.split("."), value)
    _aws_credentials(data, env)
    return _validate(data)


def _aws_credentials(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """S3 credentials not in the config come from the standard AWS variables, as every AWS tool does."""
    s3 = data.get("storage", {}).get("s3")
    if not isinstance(s3, dict):
        return
    for field, variable in (
        ("access_key_id", "AWS_ACCESS_KEY_ID"),
        ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ("session_token", "AWS_SESSION_TOKEN"),
    ):
        if not s3.get(field) and env.get(variable):
            s3[field] = env[variable]


def example_config() -> str:
    """The commented example config that `studio402 init` writes (generated from the model above)."""
    from studio402.config_example import example_config as generate  # it imports this module

    return generate()


def _validate(data: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from e


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value
