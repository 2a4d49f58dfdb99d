"""`Authorization: Bearer <token>` checks for the operator endpoints (constant-time comparison)."""

from __future__ import annotations

import hmac

from fastapi import Request

from studio402.errors import TokenError


def require_bearer(request: Request, expected: str, *, who: str) -> None:
    """401 problems `{who}_token_missing` / `{who}_token_invalid` unless the request carries `expected`."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise TokenError(
            f"send the {who} token as `Authorization: Bearer <token>`", code=f"{who}_token_missing"
        )
    if not hmac.compare_digest(auth[7:].strip().encode(), expected.encode()):
        raise TokenError(f"wrong {who} token", code=f"{who}_token_invalid")
