"""SIGN-IN-WITH-X headers signed by hand (the official client refuses to sign a wrong domain or uri, and
cannot sign for a smart wallet), for tests and benches."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from studio402.auth.siwx import build_message, parse_header


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_fields(fields: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


def message_fields(base: str, uri: str, chain_id: int, now: datetime, /, **fields: Any) -> dict[str, Any]:
    """The fields answering our challenge for `uri` on `base`, issued `now` and valid for 5 minutes;
    `fields` override them (None drops one)."""
    message: dict[str, Any] = {
        "domain": base.removeprefix("http://").removeprefix("https://"),
        "uri": uri,
        "version": "1",
        "nonce": "0123456789abcdef0123456789abcdef",
        "issuedAt": iso(now),
        "expirationTime": iso(now + timedelta(minutes=5)),
        "resources": [uri],
        "chainId": f"eip155:{chain_id}",
        "type": "eip191",
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not None}


def sign_in(
    signer: LocalAccount, base: str, path: str, chain_id: int, *, address: str | None = None, **fields: Any
) -> str:
    """A header for `base + path` signed by `signer` (for `address`, default the signer's own); `fields`
    override the message fields (None drops one)."""
    message = message_fields(
        base, base + path, chain_id, datetime.now(UTC), address=address or signer.address, **fields
    )
    unsigned = encode_fields({**message, "signature": "0x" + "00" * 65})
    signature = signer.sign_message(encode_defunct(text=build_message(parse_header(unsigned)))).signature
    return encode_fields({**message, "signature": "0x" + bytes(signature).hex()})
