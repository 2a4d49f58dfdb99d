"""MPP `charge` on Tempo (method `tempo`, intent `charge`, pull mode): everything that needs no chain.

- `build_challenge` issues a stateless challenge: its `id` is an HMAC over realm, method, intent, request,
  `expires`, the body `digest` and `opaque` (pympp's binding, so the unmodified pympp / mppx clients accept
  it). The request carries the route (`_mppx_scope`) and the exact price, so a credential is good for one
  route, one price and one body only.
- `parse_credential` reads `Authorization: Payment <b64url JSON>`.
- `verify` recomputes the challenge for this request, checks the HMAC, expiry and digest, then decodes the
  signed Tempo transaction (type 0x76) and checks it makes exactly one TIP-20 `transfer` /
  `transferWithMemo` of the quoted amount of the quoted currency to our recipient, on our chain, with no
  fee payer and a `validBefore` bound. Its hash is the credential's identity on the rail: one transaction
  is one payment (`replay_key`); the engine's ledger answers "already used?" through `UsedCredentials`.
- `receipt_header` is the `Payment-Receipt` of a settled charge.
No I/O here: settlement is chain/tempo_settlement.py, the outcome rules payments/methods/tempo_outcome.py.
Wire format from pympp 0.16 (`mpp`): parsing/formatting headers, JCS request encoding, the HMAC id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import rlp
from eth_account import Account
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from mpp import Challenge, Credential, Receipt, generate_challenge_id
from mpp._parsing import ParseError, format_www_authenticate, parse_authorization

from studio402.config import TempoSettings
from studio402.errors import MalformedPayment, PaymentConflict, PaymentRejected
from studio402.payments.x402 import Resource

METHOD = "tempo"
INTENT = "charge"
TX_TYPE = 0x76
_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
_TRANSFER_WITH_MEMO = bytes.fromhex("95777d59")  # transferWithMemo(address,uint256,bytes32)
_MPP_MEMO_TAG = bytes.fromhex("ef1ed712") + b"\x01"  # keccak("mpp")[:4] + version 1
# The client's transaction must not outlive the challenge by more than this (pympp signs expires + 1 s).
VALID_BEFORE_SLACK_SECONDS = 5


class Problem(StrEnum):
    """MPP problem codes (https://paymentauth.org/problems/<code>)."""

    MALFORMED = "malformed-credential"
    INVALID_CHALLENGE = "invalid-challenge"
    EXPIRED = "payment-expired"
    VERIFICATION_FAILED = "verification-failed"
    INSUFFICIENT = "payment-insufficient"
    METHOD_UNSUPPORTED = "method-unsupported"
    REPLAYED = "credential-replayed"


def _reject(problem: Problem, detail: str) -> PaymentRejected:
    return PaymentRejected(detail, code=problem.value)


@dataclass(frozen=True, slots=True)
class TempoChargeConfig:
    realm: str
    secret_key: str  # HMAC key of challenge ids (>= 32 bytes, shared by every replica)
    chain_id: int
    currency: str  # TIP-20 address
    recipient: str
    ttl_seconds: int = 300


def config_from_settings(tempo: TempoSettings) -> TempoChargeConfig:
    """`[payments.tempo]` (production) as the method's configuration."""
    return TempoChargeConfig(
        realm=tempo.realm,
        secret_key=tempo.secret_key.get_secret_value(),
        chain_id=tempo.chain_id,
        currency=to_checksum_address(tempo.currency),
        recipient=to_checksum_address(tempo.recipient),
        ttl_seconds=tempo.challenge_ttl_seconds,
    )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a challenge is bound to: the paid request and its price (base units of the currency)."""

    amount: int
    http_method: str
    path: str
    query: str
    body: bytes


def body_digest(body: bytes) -> str:
    """RFC 9530 SHA-256 digest, `sha-256=:<b64>:` (the spelling of app/paid_request.py's content_digest)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def digest_matches(digest: str | None, body: bytes) -> bool:
    """Is `digest` this body's, in the RFC's spelling or the SDKs' (pympp and mppx drop the colons)?"""
    rfc = body_digest(body)
    return digest is not None and digest in (rfc, rfc.replace(":", ""))


def charge_request(config: TempoChargeConfig, route: RouteRequest) -> dict[str, Any]:
    """The `request` JSON of the challenge for this route and price (recomputed again at verification)."""
    scope = {"http_method": route.http_method.upper(), "resource": route.path}
    if route.query:
        scope["query"] = route.query
    return {
        "_mppx_scope": scope,
        "amount": str(route.amount),
        "currency": config.currency,
        "methodDetails": {"chainId": config.chain_id},
        "recipient": config.recipient,
    }


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_challenge(
    config: TempoChargeConfig,
    route: RouteRequest,
    *,
    now: float,
    description: str | None = None,
    digest: str | None = None,
) -> Challenge:
    """A fresh HMAC-bound challenge (a random nonce in `opaque` makes each one unique). `digest`: the body's
    digest when the caller computed it already (else computed from `route.body`)."""
    return Challenge.create(
        secret_key=config.secret_key,
        realm=config.realm,
        method=METHOD,
        intent=INTENT,
        request=charge_request(config, route),
        expires=_rfc3339(now + config.ttl_seconds),
        digest=digest or body_digest(route.body),
        description=description,
        meta={"_mpp_nonce": secrets.token_hex(32)},
    )


def www_authenticate(config: TempoChargeConfig, challenge: Challenge) -> str:
    """The `WWW-Authenticate` header value (a 402 also needs `Cache-Control: no-store`)."""
    return format_www_authenticate(challenge, config.realm)


def challenge_header(
    config: TempoChargeConfig,
    route: RouteRequest,
    *,
    now: float,
    description: str | None = None,
    digest: str | None = None,
) -> str:
    challenge = build_challenge(config, route, now=now, description=description, digest=digest)
    return www_authenticate(config, challenge)


def route_for(resource: Resource, micros: int, body: bytes, *, http_method: str = "POST") -> RouteRequest:
    """The route a challenge for `resource` binds: build it the same way when issuing and when verifying."""
    parts = urlsplit(resource.url)
    return RouteRequest(micros, http_method, parts.path or "/", parts.query, body)


class TempoChargeIssuer:
    """The engine's `ChallengeIssuer` for MPP charge on Tempo (amounts: the currency has 6 decimals)."""

    def __init__(self, config: TempoChargeConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock

    def www_authenticate(self, resource: Resource, micros: int, body_digest: str | None) -> str:
        route = route_for(resource, micros, b"")
        now = self._clock()
        return challenge_header(
            self.config, route, now=now, description=resource.description, digest=body_digest
        )


def parse_credential(header: str) -> Credential:
    """`Authorization: Payment …` -> the credential; MalformedPayment (code malformed-credential) if not."""
    try:
        return parse_authorization(header)
    except (ParseError, ValueError, TypeError, KeyError) as exc:
        raise MalformedPayment("unreadable Payment credential", code=Problem.MALFORMED.value) from exc


@dataclass(frozen=True, slots=True)
class TempoCharge:
    """A credential that passed every offline check: a signed transaction paying the quoted transfer."""

    challenge_id: str
    payer: str
    tx_hash: str  # keccak of the canonical raw transaction: the rail's identity of this payment
    raw_tx: str  # 0x hex of the canonical signed transaction, broadcast as is
    amount: int
    currency: str
    recipient: str
    chain_id: int
    valid_before: int  # the chain refuses the transaction in any block at or after this time

    @property
    def nonce(self) -> str:
        return self.tx_hash

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.raw_tx.removeprefix("0x"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, stored: str) -> TempoCharge:
        return cls(**json.loads(stored))


def claimed(credential: Credential) -> tuple[str, str, str] | None:
    """(payer, tx hash, canonical raw tx) the credential's transaction claims, without any other check: the
    ledger answers a replay with its job before verification (a retry after the challenge expired still
    gets it). None when the payload is not a readable signed transaction."""
    payload = credential.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("signature"), str):
        return None
    try:
        raw = bytes.fromhex(str(payload["signature"]).removeprefix("0x"))
        fields = _decode(raw).fields
        raw, signature = _canonical(raw, fields)
        payer = _sender(fields, signature)
    except (ValueError, TypeError, rlp.DecodingError, BadSignature):
        return None
    return payer, "0x" + keccak(raw).hex(), "0x" + raw.hex()


def replay_key(charge: TempoCharge) -> str:
    """One transaction pays one job (the same key format as pympp's replay store)."""
    return f"mpp:charge:{charge.tx_hash}"


class UsedCredentials(Protocol):
    """The replay store: our ledger, shared by every process (never an in-memory set)."""

    async def claim(self, key: str) -> bool:
        """Mark `key` used; False when it already was (by this or another process)."""
        ...


async def claim_or_refuse(used: UsedCredentials, charge: TempoCharge) -> None:
    """PaymentConflict (code credential-replayed) when this transaction was already presented."""
    if not await used.claim(replay_key(charge)):
        raise PaymentConflict("this payment transaction was already used", code=Problem.REPLAYED.value)


def receipt_header(tx_hash: str, *, now: float) -> str:
    """`Payment-Receipt` of a settled charge (2xx only, with `Cache-Control: private`)."""
    return Receipt.success(
        tx_hash, timestamp=datetime.fromtimestamp(now, UTC), method=METHOD
    ).to_payment_receipt()


# -- verification ------------------------------------------------------------------------------------------


def _b64url_json(value: str) -> Any:
    padded = value + "=" * (-len(value) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _parse_expires(value: str | None) -> float:
    if not value:
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge has no expiry")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge expiry is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge expiry has no time zone")
    return parsed.timestamp()


def verify(
    config: TempoChargeConfig, credential: Credential, route: RouteRequest, *, now: float
) -> TempoCharge:
    """Every check that needs no chain; PaymentRejected (code = a `Problem`) on the first that fails."""
    echo = credential.challenge
    if echo.method != METHOD or echo.intent != INTENT:
        raise _reject(Problem.METHOD_UNSUPPORTED, f"not a {METHOD}/{INTENT} credential")
    if echo.realm != config.realm:
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge was issued for another realm")
    expected = charge_request(config, route)
    try:
        opaque = _b64url_json(echo.opaque) if echo.opaque else None
        echoed = _b64url_json(echo.request)
    except (ValueError, UnicodeError) as exc:
        raise MalformedPayment("unreadable challenge echo", code=Problem.MALFORMED.value) from exc
    if opaque is not None and not (
        isinstance(opaque, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in opaque.items())
    ):
        raise MalformedPayment("opaque must be a string map", code=Problem.MALFORMED.value)
    if echoed != expected:
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge was issued for another route, price or payee")
    if not digest_matches(echo.digest, route.body):
        raise _reject(Problem.INVALID_CHALLENGE, "the request body differs from the one the challenge binds")
    good_id = generate_challenge_id(
        secret_key=config.secret_key,
        realm=config.realm,
        method=METHOD,
        intent=INTENT,
        request=expected,
        expires=echo.expires,
        digest=echo.digest,
        opaque=opaque,
        header=echo.header,
    )
    if not secrets.compare_digest(good_id.encode(), echo.id.encode()):
        raise _reject(Problem.INVALID_CHALLENGE, "the challenge was not issued by this server")
    expires = _parse_expires(echo.expires)
    if now >= expires:
        raise _reject(Problem.EXPIRED, "the challenge has expired")
    payload = credential.payload
    if not isinstance(payload, dict):
        raise MalformedPayment("the credential payload must be an object", code=Problem.MALFORMED.value)
    if payload.get("type") != "transaction" or not isinstance(payload.get("signature"), str):
        raise _reject(
            Problem.METHOD_UNSUPPORTED, "only pull-mode credentials (a signed transaction) are accepted"
        )
    return _verify_transaction(config, route, echo.id, str(payload["signature"]), expires=expires, now=now)


@dataclass(frozen=True, slots=True)
class _DecodedTx:
    chain_id: int
    calls: list[tuple[bytes, int, bytes]]  # (to, value, data)
    valid_before: int | None
    fee_payer_slot: bytes
    fields: list[Any]


def _int(item: Any) -> int:
    if not isinstance(item, bytes):
        raise ValueError("not an integer")
    return int.from_bytes(item, "big")


def _decode(raw: bytes) -> _DecodedTx:
    if raw[:1] != bytes([TX_TYPE]):
        raise ValueError("not a Tempo (0x76) transaction")
    fields = rlp.decode(raw[1:])
    # 13 fields + the sender signature; a 15th (key authorization) means an access key: not accepted here.
    if not isinstance(fields, list) or len(fields) != 14:
        raise ValueError("unexpected Tempo transaction layout")
    calls = []
    for call in fields[4]:
        if not isinstance(call, list) or len(call) != 3 or not isinstance(call[2], bytes):
            raise ValueError("bad call")
        calls.append((call[0], _int(call[1]), call[2]))
    valid_before = _int(fields[8]) if fields[8] != b"" else None
    return _DecodedTx(_int(fields[0]), calls, valid_before, fields[11], fields)


def _canonical(raw: bytes, fields: list[Any]) -> tuple[bytes, bytes]:
    """(raw, signature) with the recovery id as 27/28, as Tempo nodes hash it."""
    signature = fields[-1]
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise ValueError("only secp256k1 sender signatures are accepted")
    if signature[64] in (0, 1):
        signature = signature[:64] + bytes([signature[64] + 27])
        raw = bytes([TX_TYPE]) + rlp.encode([*fields[:-1], signature])
    return raw, signature


def _sender(fields: list[Any], signature: bytes) -> str:
    # The sender signs the transaction without its signature; fee-payer fields are empty (checked before).
    preimage = bytes([TX_TYPE]) + rlp.encode(fields[:-1])
    return str(Account._recover_hash(keccak(preimage), signature=signature))


def _transfer_args(data: bytes) -> tuple[str, int, bytes | None]:
    """(recipient, amount, memo or None) of a TIP-20 transfer call."""
    selector, args = data[:4], data[4:]
    if selector == _TRANSFER and len(args) == 64:
        memo = None
    elif selector == _TRANSFER_WITH_MEMO and len(args) == 96:
        memo = args[64:96]
    else:
        raise _reject(Problem.VERIFICATION_FAILED, "the transaction is not a TIP-20 transfer")
    if args[:12] != bytes(12):
        raise _reject(Problem.VERIFICATION_FAILED, "malformed transfer recipient")
    return to_checksum_address(args[12:32]), int.from_bytes(args[32:64], "big"), memo


def _memo_bound_elsewhere(memo: bytes | None, realm: str, challenge_id: str) -> bool:
    """An MPP attribution memo (pympp / mppx put one on every charge) naming another server or challenge:
    tag | version | keccak(realm)[:10] | client fingerprint | keccak(challenge id)[:7]."""
    if memo is None or memo[:5] != _MPP_MEMO_TAG:
        return False  # a plain transfer or a foreign memo: the transaction hash alone is the identity
    return memo[5:15] != keccak(realm.encode())[:10] or memo[25:32] != keccak(challenge_id.encode())[:7]


def _verify_transaction(
    config: TempoChargeConfig,
    route: RouteRequest,
    challenge_id: str,
    signed: str,
    *,
    expires: float,
    now: float,
) -> TempoCharge:
    try:
        raw = bytes.fromhex(signed.removeprefix("0x"))
        tx = _decode(raw)
        raw, signature = _canonical(raw, tx.fields)
        payer = _sender(tx.fields, signature)
    except (ValueError, TypeError, rlp.DecodingError, BadSignature) as exc:
        raise _reject(Problem.VERIFICATION_FAILED, f"unreadable payment transaction: {exc}") from exc
    if tx.chain_id != config.chain_id:
        raise _reject(Problem.VERIFICATION_FAILED, f"the transaction is for chain {tx.chain_id}")
    if tx.fee_payer_slot != b"":
        raise _reject(Problem.VERIFICATION_FAILED, "fee-sponsored transactions are not accepted")
    if len(tx.calls) != 1:
        raise _reject(Problem.VERIFICATION_FAILED, "the transaction must make exactly one call")
    to, value, data = tx.calls[0]
    if to.hex() != config.currency.lower().removeprefix("0x") or value != 0:
        raise _reject(Problem.VERIFICATION_FAILED, "the transaction does not call the quoted currency")
    recipient, amount, memo = _transfer_args(data)
    if recipient.lower() != config.recipient.lower():
        raise _reject(Problem.VERIFICATION_FAILED, "the transfer pays another recipient")
    if amount != route.amount:
        problem = Problem.INSUFFICIENT if amount < route.amount else Problem.VERIFICATION_FAILED
        raise _reject(problem, f"the transfer is {amount}, the price is {route.amount}")
    if _memo_bound_elsewhere(memo, config.realm, challenge_id):
        raise _reject(Problem.VERIFICATION_FAILED, "the transfer's memo binds it to another challenge")
    if tx.valid_before is None or tx.valid_before > expires + VALID_BEFORE_SLACK_SECONDS:
        raise _reject(Problem.VERIFICATION_FAILED, "the transaction must expire with the challenge")
    if tx.valid_before <= now:
        raise _reject(Problem.EXPIRED, "the transaction has expired")
    return TempoCharge(
        challenge_id=challenge_id,
        payer=payer,
        tx_hash="0x" + keccak(raw).hex(),
        raw_tx="0x" + raw.hex(),
        amount=amount,
        currency=to_checksum_address(config.currency),
        recipient=recipient,
        chain_id=tx.chain_id,
        valid_before=tx.valid_before,
    )
