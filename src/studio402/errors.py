"""The one exception root of studio402.

Every error we raise on purpose derives from `Studio402Error` and carries a stable, machine-readable
`code`. The HTTP mapping (status + RFC 9457 body) lives only in `studio402.api.problems`.

    Studio402Error
     ├── ConfigError                 bad or missing configuration (start-up)
 │    └── SchemaOutOfDate          the database is not at this version's migration head
     ├── InputError                  the caller sent something we cannot use (nothing charged)
     │    ├── ValidationFailed         body fails the route schema; lists every invalid field
     │    ├── PayloadTooLarge          body over the size limit
     │    ├── UnknownRoute             no such model / operation
     │    └── MediaError               a media input is unusable (type, size, fetch refused, ...)
     ├── NotFound                    no such resource (or not yours: we never say which)
     ├── AccessDenied                a token or signed URL that does not grant this (403)
     ├── TokenError                  a bearer token that is invalid or expired (401)
     ├── AuthError                   SIGN-IN-WITH-X missing or invalid (answered with a SIWX 402)
     ├── PaymentError
     │    ├── PaymentRequired          no payment sent (answered with a 402 challenge)
     │    ├── MalformedPayment         the payment header cannot be decoded (400)
     │    ├── PaymentRejected          verification or settlement refused it, with a reason (402)
     │    ├── PaymentConflict          same payment, other request (409)
     │    └── SettlementPending        the outcome on chain is not known yet (never a 402)
     ├── ConflictError               the resource is in a state that forbids the action (409)
     ├── RateLimited                 too many unpaid requests from one client; `retry_after` seconds (429)
     ├── ChainError                  the chain / RPC misbehaved (infrastructure)
     ├── BackendError                a generation backend failed; carries a stable code
     └── StorageError                the blob store failed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Studio402Error(Exception):
    """Root of every error studio402 raises on purpose."""

    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str = "", *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra


class ConfigError(Studio402Error):
    code = "config_error"
    title = "Configuration error"


class SchemaOutOfDate(ConfigError):
    """The database's schema revision is not this version's head (or not one it knows)."""

    code = "schema_out_of_date"
    title = "The database schema is out of date"


class InputError(Studio402Error):
    code = "invalid_input"
    title = "Invalid input"


class NotServable(InputError):
    """Valid for the catalog, but beyond what every configured backend of its route can do."""

    code = "backend_cannot_serve"
    title = "No configured backend can serve this request"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: where (JSON path), what went wrong, and a stable type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc) or "body"

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "loc": list(self.loc), "message": self.msg, "type": self.type}


class ValidationFailed(InputError):
    code = "validation_failed"
    title = "The request body is invalid"

    def __init__(self, errors: Sequence[FieldError], detail: str = "") -> None:
        self.errors = tuple(errors)
        fields = ", ".join(dict.fromkeys(e.field for e in self.errors))
        super().__init__(detail or f"Invalid field(s): {fields}")


class PayloadTooLarge(InputError):
    code = "body_too_large"
    title = "Request body too large"


class UnknownRoute(InputError):
    code = "unknown_route"
    title = "Unknown model or operation"


class MediaError(InputError):
    code = "invalid_media"
    title = "A media input is unusable"


class NotFound(Studio402Error):
    code = "not_found"
    title = "Not found"


class AccessDenied(Studio402Error):
    code = "access_denied"
    title = "Access denied"


class TokenError(Studio402Error):
    code = "token_invalid"
    title = "Invalid or expired token"


class AuthError(Studio402Error):
    """SIGN-IN-WITH-X missing or invalid; `challenge` is the decoded PAYMENT-REQUIRED (accepts: [] and the
    sign-in-with-x extension) that lets a client sign in by itself."""

    code = "siwx_invalid"
    title = "Wallet authentication required"

    def __init__(self, detail: str = "", *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.challenge: Mapping[str, Any] | None = None


class PaymentError(Studio402Error):
    """A payment problem. `challenge` is the decoded x402 v2 PaymentRequired to send back (if any),
    `v1_accepts` the same offers in x402 v1 form, `www_authenticate` the MPP challenges."""

    code = "payment_error"
    title = "Payment error"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        challenge: Mapping[str, Any] | None = None,
        v1_accepts: Sequence[Mapping[str, Any]] = (),
        www_authenticate: Sequence[str] = (),
        **extra: Any,
    ) -> None:
        super().__init__(detail, code=code, **extra)
        self.challenge = challenge
        self.v1_accepts = tuple(v1_accepts)
        self.www_authenticate = tuple(www_authenticate)  # MPP `Payment` challenges, one header each


class PaymentRequired(PaymentError):
    code = "payment_required"
    title = "Payment required"


class MalformedPayment(PaymentError):
    code = "malformed_payment"
    title = "The payment header cannot be decoded"


class PaymentRejected(PaymentError):
    """Verification or settlement refused the payment; `code` is the x402 reason."""

    code = "payment_rejected"
    title = "Payment rejected"


class PaymentConflict(PaymentError):
    code = "payment_reused"
    title = "This payment was already used for another request"


class SettlementPending(PaymentError):
    code = "settlement_pending"
    title = "Settlement outcome not known yet"


class ConflictError(Studio402Error):
    code = "conflict"
    title = "Conflict"


class RateLimited(Studio402Error):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class ChainError(Studio402Error):
    code = "chain_error"
    title = "Blockchain RPC error"


class BackendError(Studio402Error):
    code = "backend_error"
    title = "Generation backend error"


class StorageError(Studio402Error):
    code = "storage_error"
    title = "Storage error"


def field_errors_from_pydantic(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Turn pydantic's error dicts into our FieldError values (no pydantic import needed here)."""
    out: list[FieldError] = []
    for err in errors:
        loc = tuple(p for p in err.get("loc", ()) if isinstance(p, str | int))
        out.append(
            FieldError(loc=loc, msg=str(err.get("msg", "invalid")), type=str(err.get("type", "invalid")))
        )
    return out
