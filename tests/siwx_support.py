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


def sign_in(
    signer: LocalAccount, base: str, path: str, chain_id: int, *, address: str | None = None, **fields: Any
) -> str:
    """A header for `base + path` signed by `signer` (for `address`, default the signer's own); `fields`
    override the message fields (None drops one)."""
    now = datetime.now(UTC)
    uri = base + path
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
        "address": address or signer.address,
    }
    message.update(fields)
    message = {k: v for k, v in message.items() if v is not None}
    unsigned = base64.b64encode(json.dumps({**message, "signature": "0x" + "00" * 65}).encode()).decode()
    signature = signer.sign_message(encode_defunct(text=build_message(parse_header(unsigned)))).signature
    return base64.b64encode(
        json.dumps({**message, "signature": "0x" + bytes(signature).hex()}).encode()
    ).decode()
