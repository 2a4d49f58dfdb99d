// Pays one studio402 route with the official Node client (@x402/fetch) and prints what happened as JSON.
// usage: node pay.mjs <url> <private key> <json body>
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const [url, key, body] = process.argv.slice(2);
const client = new x402Client();
client.register("eip155:*", new ExactEvmScheme(privateKeyToAccount(key)));
if (typeof client.setSpendControls === "function") client.setSpendControls(false); // allow the devnet token
const pay = wrapFetchWithPayment(fetch, client);
const response = await pay(url, { method: "POST", headers: { "content-type": "application/json" }, body });
const header = response.headers.get("PAYMENT-RESPONSE");
console.log(JSON.stringify({
  status: response.status,
  body: await response.json(),
  receipt: header ? decodePaymentResponseHeader(header) : null,
}));
