"""Payment offers: what we accept (network, asset, payTo) and the requirements built from a price."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from studio402.money import Asset, to_atomic

SCHEME_EXACT = "exact"
# x402 v1 names networks instead of CAIP-2; only these have a v1 name (a local chain has none).
V1_NETWORK_NAMES = {
    "eip155:8453": "base",
    "eip155:84532": "base-sepolia",
    "eip155:43114": "avalanche",
    "eip155:43113": "avalanche-fuji",
    "eip155:137": "polygon",
    "eip155:80002": "polygon-amoy",
}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One x402 `exact` payment requirement for a concrete amount."""

    scheme: str
    network: str
    asset: str
    amount: int  # atomic units of the asset
    pay_to: str
    max_timeout_seconds: int
    extra: dict[str, str] = field(default_factory=dict)

    def to_v2(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "network": self.network,
            "amount": str(self.amount),
            "asset": self.asset,
            "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": dict(self.extra),
        }

    def to_v1(self, resource_url: str, description: str, mime_type: str) -> dict[str, Any] | None:
        name = V1_NETWORK_NAMES.get(self.network)
        if name is None:
            return None
        return {
            "scheme": self.scheme,
            "network": name,
            "maxAmountRequired": str(self.amount),
            "resource": resource_url,
            "description": description,
            "mimeType": mime_type,
            "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "asset": self.asset,
            "outputSchema": None,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True, slots=True)
class Offer:
    """An EIP-3009 stablecoin we accept on one network, paid to `pay_to`."""

    asset: Asset
    pay_to: str
    max_timeout_seconds: int

    @property
    def network(self) -> str:
        return self.asset.network

    @property
    def chain_id(self) -> int:
        return int(self.network.split(":", 1)[1])

    def requirement(self, micros: int) -> Requirement:
        return Requirement(
            scheme=SCHEME_EXACT,
            network=self.network,
            asset=self.asset.address,
            amount=to_atomic(micros, self.asset.decimals),
            pay_to=self.pay_to,
            max_timeout_seconds=self.max_timeout_seconds,
            extra={"name": self.asset.name, "version": self.asset.version},
        )


def requirements(offers: Sequence[Offer], micros: int) -> list[Requirement]:
    return [offer.requirement(micros) for offer in offers]
