"""The 402s: every offer (x402 v2 header, v1 body where the network has a v1 name, MPP `WWW-Authenticate`
challenges bound to the request body), for an unpaid request or a refused payment. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from studio402.errors import PaymentRejected, PaymentRequired
from studio402.money import format_usd
from studio402.payments import x402
from studio402.payments.interfaces import ChallengeIssuer
from studio402.payments.offers import Offer, Requirement, requirements

ExtensionsFor = Callable[[str], Mapping[str, Any]]


class Challenges:
    def __init__(
        self,
        offers: Sequence[Offer],
        *,
        extensions_for: ExtensionsFor | None = None,
        issuers: Sequence[ChallengeIssuer] = (),
    ) -> None:
        self.offers = tuple(offers)
        self._extensions_for = extensions_for
        self._issuers = tuple(issuers)

    def requirements(self, micros: int) -> list[Requirement]:
        return requirements(self.offers, micros)

    def payment_required(
        self,
        resource: x402.Resource,
        micros: int,
        *,
        error: str | None = None,
        detail: str | None = None,
        body_digest: str | None = None,
    ) -> PaymentRequired:
        """The 402 for an unpaid (or refused) request: every offer, in v2 and (where possible) v1 form, and
        the MPP challenges (bound to the body's RFC 9530 digest)."""
        challenge = self._challenge(resource, micros, error, body_digest)
        return PaymentRequired(detail or self._detail(resource, micros), **challenge)

    def rejected(self, reason: str, detail: str, resource: x402.Resource, micros: int) -> PaymentRejected:
        """A refused payment: 402 with the reason and a fresh challenge to try again."""
        return PaymentRejected(detail, code=reason, **self._challenge(resource, micros, reason, None))

    @staticmethod
    def _detail(resource: x402.Resource, micros: int) -> str:
        return f"Pay ${format_usd(micros)} to {resource.description}."

    def _challenge(
        self, resource: x402.Resource, micros: int, error: str | None, body_digest: str | None
    ) -> dict[str, Any]:
        accepts = self.requirements(micros)
        digest = body_digest or resource.body_digest
        extensions = self._extensions_for(resource.url) if self._extensions_for else None
        return {
            "challenge": x402.payment_required(resource, accepts, error=error, extensions=extensions),
            "v1_accepts": x402.v1_accepts(resource, accepts),
            "www_authenticate": [i.www_authenticate(resource, micros, digest) for i in self._issuers],
            "price": {"usd": format_usd(micros), "micros": str(micros)},
        }
