"""x402 wire codec: header names, base64-JSON encoding, PaymentRequired bodies, payload decoding.

The official SDK's pydantic models validate what clients send; what we send is built as plain dicts."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from x402.schemas import PaymentPayload, PaymentRequirements

from studio402.errors import MalformedPayment, PaymentRejected
from studio402.money import account_key
from studio402.payments.offers import V1_NETWORK_NAMES, Requirement

PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"
X_PAYMENT = "X-PAYMENT"  # x402 v1 request header
X_PAYMENT_RESPONSE = "X-PAYMENT-RESPONSE"  # x402 v1 response header
MAX_HEADER_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class Resource:
    url: str
    description: str
    mime_type: str = "application/json"
    # RFC 9530 digest of the request body this resource was asked with: MPP challenges bind it, including
    # those re-issued in a 402 that refuses a payment. Not part of the x402 JSON.
    body_digest: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "description": self.description, "mimeType": self.mime_type}


def encode(obj: Mapping[str, Any]) -> str:
    """Standard padded base64 of compact UTF-8 JSON, as the x402 transports specify."""
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode(value: str) -> Any:
    if len(value) > MAX_HEADER_BYTES:
        raise MalformedPayment("payment header too large", code="invalid_payload")
    try:
        raw = base64.b64decode(value.strip() + "=" * (-len(value.strip()) % 4), validate=False)
        return json.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise MalformedPayment(f"payment header is not base64 JSON: {e}", code="invalid_payload") from None


def payment_required(
    resource: Resource,
    accepts: Sequence[Requirement],
    *,
    error: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"x402Version": 2}
    if error:
        body["error"] = error
    body["resource"] = resource.to_json()
    body["accepts"] = [r.to_v2() for r in accepts]
    if extensions:
        body["extensions"] = dict(extensions)
    return body


def v1_accepts(resource: Resource, accepts: Sequence[Requirement]) -> list[dict[str, Any]]:
    """The same offers in x402 v1 form, for the networks v1 can name."""
    out = (r.to_v1(resource.url, resource.description, resource.mime_type) for r in accepts)
    return [r for r in out if r is not None]


def decode_v1_payment(value: str, accepts: Sequence[Requirement]) -> PaymentPayload:
    """X-PAYMENT (x402 v1: network names, no `accepted`) -> a v2 PaymentPayload for the offer it names.
    v1 has no amount in the payload beyond the authorization: `accepted` is our own requirement."""
    data = decode(value)
    if (
        not isinstance(data, dict)
        or data.get("x402Version") != 1
        or not isinstance(data.get("payload"), dict)
    ):
        raise MalformedPayment("X-PAYMENT must be an x402 v1 payload", code="invalid_payload")
    by_name = {V1_NETWORK_NAMES.get(r.network): r for r in accepts}
    requirement = by_name.get(data.get("network"))
    if requirement is None or data.get("scheme") != requirement.scheme:
        raise MalformedPayment(
            f"no v1 offer for {data.get('scheme')} on {data.get('network')}", code="invalid_network"
        )
    return PaymentPayload(
        x402_version=2,
        payload=data["payload"],
        accepted=PaymentRequirements.model_validate(requirement.to_v2()),
    )


def v1_network(network: str) -> str:
    return V1_NETWORK_NAMES.get(network, network)


def decode_payment(value: str) -> PaymentPayload:
    """PAYMENT-SIGNATURE (v2) -> the SDK's PaymentPayload; anything else is a 400."""
    data = decode(value)
    if not isinstance(data, dict):
        raise MalformedPayment("payment payload must be a JSON object", code="invalid_payload")
    if data.get("x402Version") != 2:
        raise MalformedPayment("only x402Version 2 payloads are accepted here", code="invalid_x402_version")
    try:
        return PaymentPayload.model_validate(data)
    except ValidationError as e:
        raise MalformedPayment(
            f"invalid payment payload: {e.error_count()} error(s)", code="invalid_payload"
        ) from None


@dataclass(frozen=True, slots=True)
class MismatchReasons:
    """A scheme's x402 reason codes for an `accepted` that is not our offer, and what its `extra` holds."""

    asset: str
    pay_to: str
    amount: str
    extra_fields: str  # for the message, e.g. "EIP-712 name/version"


def check_accepted(payload: PaymentPayload, requirement: Requirement, reasons: MismatchReasons) -> None:
    """The client's `accepted` must be exactly what we offer (x402 v2 matches requirements exactly);
    addresses compare as their chain spells them (EVM hex in any case, base58 exactly)."""
    accepted = payload.accepted
    if accepted.scheme != requirement.scheme:
        raise PaymentRejected(f"scheme {accepted.scheme!r} is not accepted", code="unsupported_scheme")
    if accepted.network != requirement.network:
        raise PaymentRejected(f"network {accepted.network!r} is not offered", code="invalid_network")
    if account_key(accepted.asset) != account_key(requirement.asset):
        raise PaymentRejected(
            f"asset {accepted.asset} is not offered on {accepted.network}", code=reasons.asset
        )
    if account_key(accepted.pay_to) != account_key(requirement.pay_to):
        raise PaymentRejected(f"payTo {accepted.pay_to} is not ours", code=str(reasons.pay_to))
    if accepted.amount != str(requirement.amount):
        raise PaymentRejected(
            f"amount {accepted.amount} differs from the price {requirement.amount}", code=str(reasons.amount)
        )
    extra = accepted.extra or {}
    if any(extra.get(k) != v for k, v in requirement.extra.items()):
        raise PaymentRejected(
            f"extra ({reasons.extra_fields}) differs from the offer", code="invalid_payment_requirements"
        )
