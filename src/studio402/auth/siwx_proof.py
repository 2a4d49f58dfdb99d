"""The SIGN-IN-WITH-X proof: header decoding and the EIP-4361 text it signs.

The header is base64 of a JSON object (x402 `sign-in-with-x` extension), not the raw message: we rebuild the
message from the fields. `build_message` reproduces the rendering of the `siwe` library used by the official
x402 clients (Python `signinwithethereum`, TS `siwe`) byte for byte, without its slow ABNF parser.

Every field is one line of the message, so control characters are refused everywhere: that keeps the
field -> text mapping injective (no field can forge another line).
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from studio402.errors import AuthError

MAX_HEADER_BYTES = 8 * 1024


class SiwxCode(StrEnum):
    """Stable `AuthError.code` values of SIGN-IN-WITH-X verification."""

    MISSING = "siwx_missing"
    MALFORMED = "siwx_malformed"
    WRONG_DOMAIN = "siwx_wrong_domain"
    WRONG_URI = "siwx_wrong_uri"
    UNSUPPORTED_CHAIN = "siwx_unsupported_chain"
    EXPIRED = "siwx_expired"
    NOT_YET_VALID = "siwx_not_yet_valid"
    ISSUED_IN_FUTURE = "siwx_issued_in_future"
    TOO_OLD = "siwx_too_old"
    BAD_SIGNATURE = "siwx_bad_signature"


SIGNATURE_TYPES = frozenset({"eip191", "ed25519"})
SIGNATURE_SCHEMES = frozenset({"eip191", "eip1271", "eip6492", "siws"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"[^\s/?#]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"[A-Za-z0-9]{8,128}")  # bounded: it keys a credit spend's payment row
_CAIP2 = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_EIP155 = re.compile(r"eip155:(0|[1-9][0-9]{0,18})")
_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
# Solana: base58 public key (32 bytes) and base58 ed25519 signature (64 bytes).
_BASE58_ADDRESS = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_BASE58_SIGNATURE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{64,88}")
_ANY_ADDRESS = re.compile(f"{_ADDRESS.pattern}|{_BASE58_ADDRESS.pattern}")
_ANY_SIGNATURE = re.compile(f"{_SIGNATURE.pattern}|{_BASE58_SIGNATURE.pattern}")
SOLANA_NAMESPACE = "solana:"
# RFC 3339 date-time, the EIP-4361 grammar for issued-at / expiration-time / not-before.
_DATETIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


@dataclass(frozen=True, slots=True)
class SiwxProof:
    """The decoded header. String fields are kept exactly as sent: they are what was signed."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: str  # CAIP-2, e.g. "eip155:31337" or "solana:<genesis hash prefix>"
    type: str
    nonce: str
    issued_at: str
    signature: str
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] | None = None
    signature_scheme: str | None = None

    @property
    def issued(self) -> datetime:
        return _parse_time(self.issued_at, "issuedAt")

    @property
    def expires(self) -> datetime | None:
        return None if self.expiration_time is None else _parse_time(self.expiration_time, "expirationTime")

    @property
    def valid_from(self) -> datetime | None:
        return None if self.not_before is None else _parse_time(self.not_before, "notBefore")

    @property
    def evm_chain_id(self) -> int | None:
        """The EIP-155 chain id, or None when `chain_id` is not a canonical `eip155:<id>`."""
        m = _EIP155.fullmatch(self.chain_id)
        return int(m.group(1)) if m else None


def _malformed(detail: str) -> AuthError:
    return AuthError(f"Malformed SIGN-IN-WITH-X header: {detail}", code=SiwxCode.MALFORMED)


def _decode_base64(value: str) -> bytes:
    if len(value) > MAX_HEADER_BYTES:
        raise _malformed(f"longer than {MAX_HEADER_BYTES} bytes")
    text = value.strip()
    # Standard alphabet first; also accept urlsafe and missing padding.
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _malformed("not base64") from exc


def _decode_json(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed("not UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    return obj


def _text(obj: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        raise _malformed(f"'{key}' must be a non-empty single-line string")
    if pattern is not None and not pattern.fullmatch(value):
        raise _malformed(f"'{key}' has an invalid format")
    return value


def _optional_text(obj: dict[str, Any], key: str, *, allow_empty: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (not value and not allow_empty) or _CONTROL.search(value):
        raise _malformed(f"'{key}' must be a single-line string")
    return value


def _parse_time(value: str, key: str) -> datetime:
    if not _DATETIME.fullmatch(value):
        raise _malformed(f"'{key}' is not an RFC 3339 date-time")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:  # e.g. second 60
        raise _malformed(f"'{key}' is not a valid date-time") from exc


def _time_text(obj: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = _text(obj, key) if required else _optional_text(obj, key)
    if value is not None:
        _parse_time(value, key)
    return value


def _resources(obj: dict[str, Any]) -> tuple[str, ...] | None:
    value = obj.get("resources")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _malformed("'resources' must be a list")
    for item in value:
        if not isinstance(item, str) or not item or _CONTROL.search(item) or " " in item:
            raise _malformed("'resources' must hold URIs")
    return tuple(value)


def _choice(obj: dict[str, Any], key: str, allowed: frozenset[str], *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if value not in allowed:
        raise _malformed(f"'{key}' must be one of {sorted(allowed)}")
    return str(value)


def parse_header(value: str) -> SiwxProof:
    """Decode a SIGN-IN-WITH-X header value; raise AuthError(siwx_malformed) on any defect."""
    obj = _decode_json(_decode_base64(value))
    if _text(obj, "version") != "1":
        raise _malformed("'version' must be \"1\"")
    sig_type = _choice(obj, "type", SIGNATURE_TYPES, required=True)
    return SiwxProof(
        domain=_text(obj, "domain", _DOMAIN),
        address=_text(obj, "address", _ANY_ADDRESS),
        uri=_text(obj, "uri"),
        version="1",
        chain_id=_text(obj, "chainId", _CAIP2),
        type=str(sig_type),
        nonce=_text(obj, "nonce", _NONCE),
        issued_at=str(_time_text(obj, "issuedAt", required=True)),
        signature=_text(obj, "signature", _ANY_SIGNATURE),
        statement=_optional_text(obj, "statement"),
        expiration_time=_time_text(obj, "expirationTime", required=False),
        not_before=_time_text(obj, "notBefore", required=False),
        # siwe renders an empty request id ("Request ID: "), so it stays allowed.
        request_id=_optional_text(obj, "requestId", allow_empty=True),
        resources=_resources(obj),
        signature_scheme=_choice(obj, "signatureScheme", SIGNATURE_SCHEMES, required=False),
    )


def check_encoding(proof: SiwxProof) -> None:
    """Address and signature in the encoding of the proof's chain: base58 on Solana, 0x hex elsewhere.

    Checked once the chain is known to be supported, so an unsupported chain is reported as such.
    """
    solana = proof.chain_id.startswith(SOLANA_NAMESPACE)
    address, signature = (_BASE58_ADDRESS, _BASE58_SIGNATURE) if solana else (_ADDRESS, _SIGNATURE)
    if not address.fullmatch(proof.address):
        raise _malformed("'address' has an invalid format for its chain")
    if not signature.fullmatch(proof.signature):
        raise _malformed("'signature' has an invalid format for its chain")


def build_message(proof: SiwxProof) -> str:
    """The EIP-4361 text the wallet signed (same bytes as `siwe`'s prepare_message)."""
    chain = proof.evm_chain_id
    if chain is None:
        raise AuthError(f"Not an EVM chain: {proof.chain_id}", code=SiwxCode.UNSUPPORTED_CHAIN)
    lines = [f"{proof.domain} wants you to sign in with your Ethereum account:", proof.address, ""]
    if proof.statement is not None:
        lines.append(proof.statement)
    lines += [
        "",
        f"URI: {proof.uri}",
        f"Version: {proof.version}",
        f"Chain ID: {chain}",
        f"Nonce: {proof.nonce}",
        f"Issued At: {proof.issued_at}",
    ]
    if proof.expiration_time:
        lines.append(f"Expiration Time: {proof.expiration_time}")
    if proof.not_before:
        lines.append(f"Not Before: {proof.not_before}")
    if proof.request_id is not None:
        lines.append(f"Request ID: {proof.request_id}")
    if proof.resources is not None:
        lines.append("Resources:")
        lines.extend(f"- {r}" for r in proof.resources)
    return "\n".join(lines)
