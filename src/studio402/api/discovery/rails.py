"""Every way to pay this server, described once for all discovery documents: the x402 offers of
PAYMENT-REQUIRED (EVM and Solana networks) and MPP `charge` on Tempo (WWW-Authenticate)."""

from __future__ import annotations

from typing import Any

from studio402.wiring import Wiring


def mpp_offers(svc: Wiring, amount: int | None) -> list[dict[str, Any]]:
    """The MPP offers as `x-payment-info` entries (amount in base units; None when the price varies)."""
    if svc.tempo is None:
        return []
    config = svc.tempo.method.config
    return [
        {
            "intent": "charge",
            "method": "tempo",
            "network": f"tempo:{config.chain_id}",
            "chainId": config.chain_id,
            "currency": config.currency,
            "recipient": config.recipient,
            "amount": None if amount is None else str(amount),
        }
    ]


def payment_summary(svc: Wiring) -> list[str]:
    """One line per rail, for llms.txt and agents.txt."""
    x402_offers = ", ".join(f"{o.asset.name} ({o.network})" for o in svc.engine.offers) or "none configured"
    lines = [f"x402 v2 `exact` (header PAYMENT-SIGNATURE, receipt PAYMENT-RESPONSE): {x402_offers}"]
    for offer in mpp_offers(svc, None):
        lines.append(
            f"MPP `charge` on Tempo (chain {offer['chainId']}, TIP-20 {offer['currency']}): challenge "
            "`WWW-Authenticate: Payment`, credential `Authorization: Payment`, receipt `Payment-Receipt`"
        )
    return lines
