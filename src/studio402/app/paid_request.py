"""The paid request: validate -> resolve media -> check servable -> quote -> charge.

Which payment header wins is decided here, not at the edge: an MPP `Authorization: Payment` (when the
Tempo rail runs), then x402 v2 `PAYMENT-SIGNATURE`, then v1 `X-PAYMENT`, then a SIGN-IN-WITH-X that spends
refund credit; with none of them, the 402."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER, declare_payment_identifier_extension

from studio402.app.ratelimit import TokenBuckets
from studio402.auth.siwx import SIWX_EXTENSION_KEY, SIWX_HEADER, SiwxVerifier, parse_header
from studio402.backends.base import Ask
from studio402.backends.registry import BackendRegistry
from studio402.catalog import Catalog, Route, ValidatedRequest
from studio402.errors import AuthError, ConfigError, NotServable, PaymentError, Studio402Error
from studio402.media.resolver import MediaResolver
from studio402.payments import x402
from studio402.payments.engine import PaymentEngine
from studio402.payments.methods.tempo_method import TempoChargeMethod
from studio402.payments.offers import Requirement
from studio402.payments.paid import Paid
from studio402.storage.uploads import Upload, UploadService

# Headers that may pay (x402 v2 and v1, a credit sign-in); an MPP `Authorization: Payment` pays too.
_PAYING_HEADERS = (x402.PAYMENT_SIGNATURE, x402.X_PAYMENT, SIWX_HEADER)


def content_digest(body: bytes) -> str:
    """RFC 9530 `Content-Digest` of the request body, which MPP challenges bind (`digest=`)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


@dataclass(frozen=True, slots=True)
class PaidCall:
    """What the edge read of a request: its headers (a case-insensitive mapping), raw body and peer."""

    headers: Mapping[str, str]
    body: bytes
    client: str

    @property
    def mpp_authorization(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth if auth[:8].lower() == "payment " else None

    @property
    def carries_payment(self) -> bool:
        """A payment or sign-in is attached; whether it pays is known only after the quote."""
        return self.mpp_authorization is not None or any(h in self.headers for h in _PAYING_HEADERS)

    @property
    def digest(self) -> str:
        return content_digest(self.body)


@dataclass(frozen=True, slots=True)
class Quoted:
    request: ValidatedRequest
    micros: int
    accepts: list[Requirement]


@dataclass(frozen=True, slots=True)
class Purchase:
    request: ValidatedRequest
    paid: Paid
    v1: bool  # answer with x402 v1's receipt header (the request did not pay with PAYMENT-SIGNATURE)


class ChallengeExtensions:
    """The x402 extensions a 402 offers: a payment identifier, and a credit sign-in when refunds are
    credit (the official clients try it first)."""

    def __init__(self, siwx: SiwxVerifier, *, credit: bool) -> None:
        self._siwx = siwx
        self._credit = credit

    def __call__(self, resource_url: str) -> Mapping[str, Any]:
        extensions: dict[str, Any] = {
            PAYMENT_IDENTIFIER: declare_payment_identifier_extension(required=False)
        }
        if self._credit:
            extensions[SIWX_EXTENSION_KEY] = self._siwx.challenge_extension(
                resource_url, statement="Sign in to spend your studio402 credit"
            )
        return extensions


@dataclass(frozen=True, slots=True)
class PaidRequestConfig:
    public_url: str
    markup_bps: int
    credit: bool  # refunds are credit, which a SIGN-IN-WITH-X spends


class PaidRequests:
    """Quotes and sells generations and upload slots. Without `media`, `registry` and `uploads` (static
    offers: tests of the public surface) it resolves no media, checks no backend and sells no slot."""

    def __init__(
        self,
        catalog: Catalog,
        engine: PaymentEngine,
        siwx: SiwxVerifier,
        unpaid_fetches: TokenBuckets,
        config: PaidRequestConfig,
        *,
        media: MediaResolver | None = None,
        registry: BackendRegistry | None = None,
        mpp: TempoChargeMethod | None = None,
        uploads: UploadService | None = None,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.siwx = siwx
        self.unpaid_fetches = unpaid_fetches  # remote downloads for requests that pay nothing (429)
        self.config = config
        self._media = media
        self._registry = registry
        self._mpp = mpp
        self._uploads = uploads

    def resource(self, route: Route) -> x402.Resource:
        """The paid resource as clients see it: from the configured public URL, never the Host header."""
        return x402.Resource(url=self.config.public_url + route.path, description=route.title)

    def route(self, model: str, operation: str) -> Route:
        return self.catalog.get(model, operation)

    async def quote(self, call: PaidCall, route: Route, payload: Any) -> Quoted:
        """The price of a body (its media resolved, so the price is the one a purchase pays)."""
        request, _ = await self._resolved(call, self.catalog.validate(route, payload), quote=True)
        micros = self._price(request)
        return Quoted(request, micros, self.engine.requirements(micros))

    async def buy(self, call: PaidCall, route: Route, payload: Any) -> Purchase:
        """A generation: its job is created once the payment settles (or while it does: 202)."""
        request, deferred = await self._resolved(call, self.catalog.validate(route, payload), quote=False)
        return await self._charge(call, request, deferred)

    async def buy_upload(self, call: PaidCall, payload: Any) -> tuple[Purchase, Upload]:
        """An upload slot (no media to resolve): the one its payment bought, again on a replay."""
        purchase = await self._charge(call, self.catalog.validate(self.catalog.upload, payload), 0)
        if self._uploads is None:  # static offers: never reached, they cannot settle a payment
            raise ConfigError("upload slots need the full wiring")
        paid, params = purchase.paid, purchase.request.canonical
        upload = await self._uploads.issue(paid.job_id, paid.payer, params["filename"], params["contentType"])
        return purchase, upload

    # -- media, before any price -----------------------------------------------------------------------------

    async def _resolved(
        self, call: PaidCall, request: ValidatedRequest, *, quote: bool
    ) -> tuple[ValidatedRequest, int]:
        """Fetch and verify the media inputs; returns them with the downloads not yet counted against the
        client. An unpaid request spends a token of its client's bucket per remote download up front (429
        when empty). One carrying a payment only needs a token left, and is counted afterwards if it does
        not pay (bad media here, a refused payment in `_charge`): a made-up header does not lift the
        limit, and a paid retry usually downloads nothing (its 402 attempt did, and the URL is cached)."""
        deferred = self._limit_downloads(call, self._fetches(request), quote=quote)
        try:
            resolved = await self._resolve_media(request)
            self._check_servable(resolved)
            return resolved, deferred
        except Studio402Error:
            self._count_unpaid(call, deferred)
            raise

    def _limit_downloads(self, call: PaidCall, fetches: int, *, quote: bool) -> int:
        if not fetches or not self.unpaid_fetches.enabled:
            return 0
        if quote or not call.carries_payment:
            self.unpaid_fetches.take(call.client, fetches)
            return 0
        self.unpaid_fetches.check(call.client)
        return fetches

    def _count_unpaid(self, call: PaidCall, deferred: int) -> None:
        """A request whose downloads were not counted up front (it carried a payment) did not pay."""
        if deferred:
            self.unpaid_fetches.spend(call.client, deferred)

    def _fetches(self, request: ValidatedRequest) -> int:
        """Downloads resolving `request` would start now."""
        return 0 if self._media is None else self._media.fetches_for(request)

    async def _resolve_media(self, request: ValidatedRequest) -> ValidatedRequest:
        return request if self._media is None else await self._media.resolve(request)

    def _check_servable(self, request: ValidatedRequest) -> None:
        """400 before any price when no backend of the route's chain can serve this request (it would be
        paid for, then fail upstream and cost a refund)."""
        if self._registry is None:
            return
        route = request.route
        reason = self._registry.refusal(Ask(route.model, route.operation, request.canonical, request.inputs))
        if reason is not None:
            raise NotServable(reason)

    # -- the charge ------------------------------------------------------------------------------------------

    def _price(self, request: ValidatedRequest) -> int:
        return self.catalog.quote(request, self.config.markup_bps)

    async def _charge(self, call: PaidCall, request: ValidatedRequest, deferred: int) -> Purchase:
        """Settle the payment sent with the request, or spend the signed-in payer's credit, or raise the
        402."""
        micros = self._price(request)
        try:
            paid = await self._pay(call, request, micros)
        except (PaymentError, AuthError):
            self._count_unpaid(call, deferred)
            raise
        return Purchase(request, paid, v1=x402.PAYMENT_SIGNATURE not in call.headers)

    async def _pay(self, call: PaidCall, request: ValidatedRequest, micros: int) -> Paid:
        # Every 402 this request gets (a refused payment too) binds its MPP challenges to this body.
        resource = replace(self.resource(request.route), body_digest=call.digest)
        authorization = call.mpp_authorization
        if authorization is not None and self._mpp is not None:
            payload = self._mpp.to_payload(authorization, resource, micros, call.body)
            return await self.engine.pay_payload(payload, request, micros, resource)
        header = call.headers.get(x402.PAYMENT_SIGNATURE)
        if header is not None:
            return await self.engine.pay(header, request, micros, resource)
        legacy = call.headers.get(x402.X_PAYMENT)
        if legacy is not None:
            return await self.engine.pay(legacy, request, micros, resource, v1=True)
        sign_in = call.headers.get(SIWX_HEADER)
        if sign_in is not None and self.config.credit:
            return await self._spend_credit(call, sign_in, request, micros, resource)
        raise self.engine.payment_required(resource, micros, body_digest=call.digest)

    async def _spend_credit(
        self, call: PaidCall, sign_in: str, request: ValidatedRequest, micros: int, resource: x402.Resource
    ) -> Paid:
        payer = await self.siwx.verify(sign_in, request_url=resource.url)
        paid = await self.engine.pay_with_credit(payer, parse_header(sign_in).nonce, request, micros)
        if paid is not None:
            return paid
        raise self.engine.payment_required(
            resource,
            micros,
            error="insufficient_credit",
            detail="Your credit does not cover this request; pay instead.",
            body_digest=call.digest,
        )
