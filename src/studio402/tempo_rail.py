"""Builds the MPP `charge` rail on Tempo from the settings: production (`[payments.tempo]`) or the embedded
Tempo devnet (`[devnet] tempo = true`). Composition only; the behaviour lives in payments/ and chain/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from studio402.chain.rpc import AsyncRpc
from studio402.chain.tempo_devnet import PATH_USD, TempoDevnet, tempo_devnet_for
from studio402.chain.tempo_settlement import TempoSettler
from studio402.config import Settings
from studio402.payments.methods.tempo_charge import TempoChargeConfig, TempoChargeIssuer, config_from_settings
from studio402.payments.methods.tempo_method import TempoChargeMethod

Closer = Callable[[], Awaitable[None]]


@dataclass
class TempoRail:
    method: TempoChargeMethod
    issuer: TempoChargeIssuer
    devnet: TempoDevnet | None = None


async def build_tempo_rail(settings: Settings, closers: list[Closer]) -> TempoRail | None:
    """The rail, or None when neither production Tempo nor the Tempo devnet is configured."""
    if settings.payments.tempo is not None:
        config = config_from_settings(settings.payments.tempo)
        rpc = AsyncRpc(settings.payments.tempo.rpc_url)
        closers.append(rpc.aclose)
        settler = TempoSettler(rpc)
        return TempoRail(TempoChargeMethod(config, settler), TempoChargeIssuer(config))
    if not (settings.devnet.enabled and settings.devnet.tempo):
        return None
    devnet = tempo_devnet_for(settings)
    info = await devnet.start()
    closers.append(devnet.stop)
    config = TempoChargeConfig(
        realm=urlsplit(settings.public_url).hostname or "localhost",
        secret_key=devnet.hmac_secret(),
        chain_id=info.chain_id,
        currency=PATH_USD,
        recipient=info.recipient,
        ttl_seconds=settings.payments.max_timeout_seconds,
    )
    # anvil's local Tempo counts expiring nonces like ordinary ones (mpp.md §10): reset before each send.
    settler = TempoSettler(devnet.rpc, before_broadcast=devnet.reset_expiring_nonce)
    return TempoRail(TempoChargeMethod(config, settler), TempoChargeIssuer(config), devnet)
