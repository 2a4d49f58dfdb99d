"""x402 `exact` on EVM chains (EIP-3009 transferWithAuthorization): the checks that need no chain.

Each check that fails is a value with an x402 reason (PaymentRejected), never a generic error. The checks
that need the chain (balance, nonce, the real transfer) go through the `EvmSettlement` port."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from x402.schemas import PaymentPayload

from studio402.errors import MalformedPayment, PaymentRejected
from studio402.payments.eip3009 import (
    TransferAuthorization,
    eip712_domain_separator,
    recover_authorization_signer,
    transfer_with_authorization_digest,
)
from studio402.payments.interfaces import OnSigned, Verified
from studio402.payments.offers import Offer, Requirement
from studio402.payments.outcome import SettleOutcome, SettleStatus
from studio402.payments.x402 import MismatchReasons, check_accepted

__all__ = [
    "EvmExactMethod",
    "EvmSettlement",
    "OnSigned",
    "Reason",
    "SettleOutcome",
    "SettleStatus",
    "VerifiedPayment",
    "reject",
]

VALID_BEFORE_MARGIN_SECONDS = 6  # the settlement must have time to land before the authorization expires
VALID_BEFORE_SLACK_SECONDS = 300  # client clocks run ahead; beyond this an authorization lives too long


class Reason(StrEnum):
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    INVALID_NETWORK = "invalid_network"
    INVALID_REQUIREMENTS = "invalid_payment_requirements"
    RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"
    VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch"
    VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
    VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
    SIGNATURE = "invalid_exact_evm_payload_signature"
    TRANSACTION_FAILED = "transaction_failed"


def reject(reason: Reason | str, detail: str) -> PaymentRejected:
    return PaymentRejected(detail, code=str(reason))


@dataclass(frozen=True, slots=True)
class VerifiedPayment:
    """An authorization whose signature, amounts and time window checked out against one requirement."""

    requirement: Requirement
    auth: TransferAuthorization
    signature: bytes

    @property
    def payer(self) -> str:
        return self.auth.from_address.lower()

    @property
    def nonce(self) -> str:
        return "0x" + self.auth.nonce.hex()

    @property
    def valid_before(self) -> int:
        return self.auth.valid_before

    def to_json(self) -> str:
        return json.dumps({"authorization": self.auth.to_json(), "signature": "0x" + self.signature.hex()})

    @classmethod
    def from_json(cls, requirement: Requirement, text: str) -> VerifiedPayment:
        data = json.loads(text)
        return cls(
            requirement,
            TransferAuthorization.from_json(data["authorization"]),
            bytes.fromhex(data["signature"].removeprefix("0x")),
        )


class EvmSettlement(Protocol):
    """The chain side of `exact` EVM payments."""

    async def simulate(self, payment: VerifiedPayment) -> str | None:
        """None when transferWithAuthorization would succeed now, else the x402 reason it would fail with."""
        ...

    async def settle(self, payment: VerifiedPayment, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        """Broadcast the transfer; the outcome decided from chain facts (payments.outcome.decide). Raises
        studio402.errors.ChainError only when the node refused the transaction before its pool."""
        ...

    async def lookup(
        self, payment: VerifiedPayment, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome:
        """What became of a settlement (the reconciler's question), from chain facts and the chain's clock;
        re-sends our signed transaction while the outcome is unknown and the node lost it."""
        ...


class EvmExactMethod:
    """Verifies `exact` payloads for one offer and settles them through its chain port."""

    def __init__(self, offer: Offer, settlement: EvmSettlement) -> None:
        self.offer = offer
        self.settlement = settlement
        self._domain = eip712_domain_separator(
            offer.asset.name, offer.asset.version, offer.chain_id, offer.asset.address
        )

    def claimed(self, payload: PaymentPayload) -> tuple[str, str, str] | None:
        auth, signature = payload.payload.get("authorization"), payload.payload.get("signature")
        if not isinstance(auth, dict) or not isinstance(signature, str):
            return None
        payer, nonce = auth.get("from"), auth.get("nonce")
        if not isinstance(payer, str) or not isinstance(nonce, str):
            return None
        return payer, nonce, signature

    def same_proof(self, stored: str, proof: str) -> bool:
        recorded = json.loads(stored).get("signature", "")
        return isinstance(recorded, str) and _hex(recorded) == _hex(proof)

    def restore(self, requirement: Requirement, stored: str) -> VerifiedPayment:
        return VerifiedPayment.from_json(requirement, stored)

    async def simulate(self, payment: Verified) -> str | None:
        return await self.settlement.simulate(_evm(payment))

    async def settle(self, payment: Verified, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        return await self.settlement.settle(_evm(payment), on_signed=on_signed, timeout=timeout)

    async def lookup(self, payment: Verified, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        return await self.settlement.lookup(_evm(payment), tx_hash, raw_tx)

    def verify(self, payload: PaymentPayload, requirement: Requirement, now: float) -> VerifiedPayment:
        check_accepted(payload, requirement, _MISMATCH)
        auth, signature = _parse_inner(payload.payload)
        if auth.to.lower() != requirement.pay_to.lower():
            raise reject(Reason.RECIPIENT_MISMATCH, f"authorization pays {auth.to}, not {requirement.pay_to}")
        if auth.value != requirement.amount:
            raise reject(
                Reason.VALUE_MISMATCH, f"authorization is for {auth.value}, the price is {requirement.amount}"
            )
        if auth.valid_before < now + VALID_BEFORE_MARGIN_SECONDS:
            raise reject(Reason.VALID_BEFORE, "the authorization expires too soon (or has expired)")
        if auth.valid_before > now + requirement.max_timeout_seconds + VALID_BEFORE_SLACK_SECONDS:
            # A settlement whose outcome is unknown is decided when the authorization expires: keep that near.
            raise reject(
                Reason.VALID_BEFORE,
                f"validBefore is more than maxTimeoutSeconds ({requirement.max_timeout_seconds} s) away",
            )
        if auth.valid_after > now:
            raise reject(Reason.VALID_AFTER, "the authorization is not valid yet")
        signer = recover_authorization_signer(
            transfer_with_authorization_digest(auth, self._domain), signature
        )
        if signer.lower() != auth.from_address.lower():
            raise reject(
                Reason.SIGNATURE,
                "the signature was not made by the payer (check the EIP-712 "
                f"domain: name={self.offer.asset.name!r} version="
                f"{self.offer.asset.version!r})",
            )
        return VerifiedPayment(requirement, auth, signature)


_MISMATCH = MismatchReasons(
    Reason.INVALID_REQUIREMENTS, Reason.RECIPIENT_MISMATCH, Reason.VALUE_MISMATCH, "EIP-712 name/version"
)


def _hex(value: str) -> str:
    return value.lower().removeprefix("0x")


def _evm(payment: Verified) -> VerifiedPayment:
    assert isinstance(payment, VerifiedPayment), payment  # the engine hands a method its own payments
    return payment


def _parse_inner(inner: dict[str, Any]) -> tuple[TransferAuthorization, bytes]:
    authorization, signature = inner.get("authorization"), inner.get("signature")
    if not isinstance(authorization, dict) or not isinstance(signature, str):
        raise MalformedPayment(
            "payload needs an EIP-3009 `authorization` object and a `signature`", code="invalid_payload"
        )
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise MalformedPayment("signature is not hex", code="invalid_payload") from None
    return TransferAuthorization.from_json(authorization), raw
