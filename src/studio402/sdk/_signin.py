"""SIGN-IN-WITH-X for the job routes: one signed header per URL, reused until shortly before it expires
(polling a job signs once, not once per poll)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from x402.extensions.sign_in_with_x import encode_siwx_header
from x402.extensions.sign_in_with_x.client import create_siwx_payload

from studio402.sdk._errors import NoPayableOffer
from studio402.sdk._wallet import Wallet

SIWX = "sign-in-with-x"
MARGIN_SECONDS = 30.0  # renew this long before the proof expires (clock skew, slow polls)
DEFAULT_TTL_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class _Signed:
    header: str
    renew_at: float


class SignIns:
    def __init__(
        self, wallet: Wallet, clock: Callable[[], float] = time.time, *, prefer: str | None = None
    ) -> None:
        self._wallet = wallet
        self._prefer = prefer  # the signature type of the key that pays (jobs belong to the payer)
        self._clock = clock
        self._by_url: dict[str, _Signed] = {}
        self.signed = 0  # how many proofs were signed (tests check reuse)

    def cached(self, url: str) -> str | None:
        signed = self._by_url.get(url)
        if signed is None or self._clock() >= signed.renew_at:
            return None
        return signed.header

    def forget(self, url: str) -> None:
        self._by_url.pop(url, None)

    async def sign(self, url: str, payment_required: dict[str, Any]) -> str:
        """Answer the auth-only 402 of `url` (its decoded PAYMENT-REQUIRED) with a proof; cached."""
        extension = (payment_required.get("extensions") or {}).get(SIWX)
        if not isinstance(extension, dict):
            raise NoPayableOffer(f"{url} asks for a payment, not a sign-in")
        info = dict(extension.get("info") or {})
        chains = list(extension.get("supportedChains") or [])
        chains.sort(key=lambda c: c.get("type") != self._prefer)
        for chain in chains:
            signer = self._wallet.siwx_signer(chain.get("type", ""))
            if signer is not None:
                break
        else:
            raise NoPayableOffer("no key of this wallet can sign in on the chains the server accepts")
        complete = {**info, "chainId": chain["chainId"], "type": chain["type"]}
        header = encode_siwx_header(await create_siwx_payload(complete, signer, url))
        self.signed += 1
        self._by_url[url] = _Signed(header, self._renew_at(info))
        return header

    def _renew_at(self, info: dict[str, Any]) -> float:
        now = self._clock()
        expires = info.get("expirationTime")
        lifetime = DEFAULT_TTL_SECONDS
        if isinstance(expires, str):
            lifetime = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() - now
        issued = info.get("issuedAt")
        if isinstance(issued, str):  # the server also bounds a proof's age from issuedAt
            age_left = datetime.fromisoformat(issued.replace("Z", "+00:00")).timestamp() + lifetime - now
            lifetime = min(lifetime, age_left)
        return now + max(0.0, min(lifetime, DEFAULT_TTL_SECONDS) - MARGIN_SECONDS)
