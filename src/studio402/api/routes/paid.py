"""The HTTP half of a paid POST shared by generate and upload: what the request carried (read by the app
service, which decides how it pays), and the answer with the job and its receipt."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from studio402.app.paid_request import PaidCall
from studio402.payments import x402
from studio402.payments.methods.tempo_charge import receipt_header
from studio402.payments.paid import Paid


def paid_call(request: Request) -> PaidCall:
    """Call after `read_json`, which keeps the raw body (MPP challenges bind its digest)."""
    # The peer address: X-Forwarded-For is anyone's to write (a trusted proxy's is applied by uvicorn).
    client = request.client.host if request.client else "unknown"
    return PaidCall(request.headers, getattr(request.state, "raw_body", b""), client)


TEMPO_PREFIX = "tempo:"  # the ledger networks of MPP charges on Tempo (payments/methods/tempo_method.py)


def paid_response(paid: Paid, body: dict[str, Any], *, v1: bool = False) -> JSONResponse:
    """200 with the x402 receipt, or 202 while the settlement is still pending (never a 402 then).
    The answer that created a job with a `callBackUrl` carries its webhook secret (sent only this once)."""
    headers = {"Cache-Control": "private"}
    if paid.webhook_secret is not None:
        body = {**body, "webhookSecret": paid.webhook_secret}
    if paid.settled and paid.network.startswith(TEMPO_PREFIX):  # MPP: its own receipt header
        headers["Payment-Receipt"] = receipt_header(paid.tx_hash or "", now=time.time())
        return JSONResponse(body, headers=headers)
    if paid.settled:
        receipt = paid.settle_response()
        if v1:
            headers[x402.X_PAYMENT_RESPONSE] = x402.encode(
                {**receipt, "network": x402.v1_network(paid.network)}
            )
        else:
            headers[x402.PAYMENT_RESPONSE] = x402.encode(receipt)
        return JSONResponse(body, headers=headers)
    body = {**body, "payment": {"status": "settling", "transaction": paid.tx_hash}}
    return JSONResponse(body, status_code=202, headers=headers)
