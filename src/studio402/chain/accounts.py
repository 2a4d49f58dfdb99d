"""anvil's default dev accounts ("test test ... junk" mnemonic) and the role each plays on the devnet.

These keys are public knowledge: never use them on a real network.
"""

from __future__ import annotations

DEV_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)

MINTER_KEY = DEV_KEYS[0]  # deploys the token and mints
SETTLER_KEY = DEV_KEYS[1]  # pays gas for transferWithAuthorization
OPERATOR_KEY = DEV_KEYS[2]  # payTo, and the wallet that sends on-chain refunds
DEMO_PAYER_KEY = DEV_KEYS[3]  # funded with test USDC for demos
