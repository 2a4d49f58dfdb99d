"""A test EIP-1193 wallet for the browser: an init script defines `window.ethereum`, whose requests are
answered in Python (eth_account) through a binding, signing with one funded devnet key."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.async_api import BrowserContext

INIT_SCRIPT = """
window.ethereum = {
  isStudio402TestWallet: true,
  request: async ({ method, params }) => {
    const answer = await window.__testWallet(method, params || []);
    if (answer && answer.error) { const e = new Error(answer.error); e.code = 4001; throw e; }
    return answer.result;
  },
  on() {}, removeListener() {},
};
"""


class TestWallet:
    __test__ = False  # not a test class

    def __init__(self, key: str, chain_id: int = 1) -> None:
        self.account = Account.from_key(key)
        self.chain_id = chain_id
        self.calls: list[str] = []

    def answer(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address]
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "wallet_switchEthereumChain":
            self.chain_id = int(params[0]["chainId"], 16)
            return None
        if method == "eth_signTypedData_v4":
            assert str(params[0]).lower() == self.account.address.lower()
            signed = self.account.sign_typed_data(full_message=json.loads(params[1]))
            return "0x" + bytes(signed.signature).hex()
        if method == "personal_sign":
            assert str(params[1]).lower() == self.account.address.lower()
            signed = self.account.sign_message(encode_defunct(hexstr=params[0]))
            return "0x" + bytes(signed.signature).hex()
        raise ValueError(f"unsupported method {method}")

    async def install(self, context: BrowserContext) -> None:
        async def binding(_source: Any, method: str, params: list[Any]) -> dict[str, Any]:
            try:
                return {"result": self.answer(method, params)}
            except Exception as exc:  # the page sees a rejected request, like a wallet error
                return {"error": f"{type(exc).__name__}: {exc}"}

        await context.expose_binding("__testWallet", binding)
        await context.add_init_script(INIT_SCRIPT)
