// An injected EIP-1193 wallet: x402 v2 payments (EIP-3009 TransferWithAuthorization signed with
// eth_signTypedData_v4) and SIGN-IN-WITH-X (an EIP-4361 message signed with personal_sign).

export interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

declare global {
  interface Window {
    ethereum?: Eip1193;
  }
}

export interface Accepted {
  scheme: string;
  network: string;
  amount: string;
  asset: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra?: { name?: string; version?: string };
}

export interface PaymentRequired {
  x402Version: number;
  resource?: unknown;
  accepts: Accepted[];
  error?: string;
}

export function provider(): Eip1193 {
  if (!window.ethereum) throw new Error("No browser wallet found (an EIP-1193 provider such as MetaMask)");
  return window.ethereum;
}

export function b64json(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let text = "";
  bytes.forEach((b) => (text += String.fromCharCode(b)));
  return btoa(text);
}

export function unb64json<T>(value: string): T {
  const text = atob(value);
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

function randomHex(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function accounts(request: boolean): Promise<string[]> {
  const method = request ? "eth_requestAccounts" : "eth_accounts";
  return (await provider().request({ method })) as string[];
}

/** The offer this page can pay: x402 `exact` on an EVM network, with the token's EIP-712 domain. */
export function evmOffer(required: PaymentRequired): Accepted {
  const offer = required.accepts.find(
    (a) => a.scheme === "exact" && a.network.startsWith("eip155:") && a.extra?.name,
  );
  if (!offer) throw new Error("The server offers no EVM payment this page can make");
  return offer;
}

/** Wallets refuse typed data whose domain names another chain than the active one: ask to switch. */
async function ensureChain(chainId: number): Promise<void> {
  const active = Number(await provider().request({ method: "eth_chainId" }));
  if (active === chainId) return;
  await provider().request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + chainId.toString(16) }] });
}

/** The PAYMENT-SIGNATURE header value paying `offer` from `from`. */
export async function paymentHeader(from: string, required: PaymentRequired, offer: Accepted): Promise<string> {
  const chainId = Number(offer.network.split(":")[1]);
  await ensureChain(chainId);
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from,
    to: offer.payTo,
    value: offer.amount,
    validAfter: String(now - 600), // clock skew between the browser and the chain
    validBefore: String(now + offer.maxTimeoutSeconds),
    nonce: "0x" + randomHex(32),
  };
  const typed = {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    domain: { name: offer.extra?.name, version: offer.extra?.version ?? "2", chainId, verifyingContract: offer.asset },
    message: authorization,
  };
  const signature = (await provider().request({
    method: "eth_signTypedData_v4",
    params: [from, JSON.stringify(typed)],
  })) as string;
  return b64json({
    x402Version: 2,
    resource: required.resource,
    accepted: offer,
    payload: { authorization, signature },
  });
}

/** A SIGN-IN-WITH-X header for exactly `base + pathAndQuery` (the server compares the whole URL). */
export async function signIn(address: string, base: string, pathAndQuery: string, chainId: number): Promise<string> {
  const uri = base + pathAndQuery;
  const now = new Date();
  const fields = {
    domain: new URL(base).host,
    address,
    statement: "Sign in to read your jobs",
    uri,
    version: "1",
    chainId: `eip155:${chainId}`,
    type: "eip191",
    nonce: randomHex(16),
    issuedAt: now.toISOString(),
    expirationTime: new Date(now.getTime() + 5 * 60_000).toISOString(),
    resources: [uri],
  };
  const message = [
    `${fields.domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    fields.statement,
    "",
    `URI: ${uri}`,
    `Version: 1`,
    `Chain ID: ${chainId}`,
    `Nonce: ${fields.nonce}`,
    `Issued At: ${fields.issuedAt}`,
    `Expiration Time: ${fields.expirationTime}`,
    "Resources:",
    `- ${uri}`,
  ].join("\n");
  const hex = "0x" + Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, "0")).join("");
  const signature = (await provider().request({ method: "personal_sign", params: [hex, address] })) as string;
  return b64json({ ...fields, signature });
}
