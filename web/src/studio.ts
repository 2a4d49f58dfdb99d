// The studio page: forms from the catalog's JSON schemas, live quotes, x402 payments from the browser
// wallet, paid uploads, progress over SSE, results, and a gallery of the wallet's jobs.
import { accounts, evmOffer, paymentHeader, signIn, unb64json, type PaymentRequired } from "./wallet";

type Schema = {
  type?: string;
  enum?: unknown[];
  anyOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  $defs?: Record<string, Schema>;
};
type Item = {
  resource: string;
  description: string;
  price: { min: string; max: string; rule: string };
  accepts: { network: string }[];
  input: { schema: Schema };
};
type Job = {
  jobId: string;
  status: string;
  progress?: number;
  model?: string;
  operation?: string;
  result?: { imageUrl?: string; videoUrl?: string; thumbnailUrl?: string } | null;
  error?: { message?: string; code?: string } | string | null;
  refund?: { amount?: string; method?: string; status?: string; tx?: string | null } | null;
};
type Field = { name: string; schema: Schema; media: "one" | "many" | null; input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const TERMINAL = new Set(["complete", "failed", "canceled"]);
const MEDIA_NAME = /^(images?|videos?|imageUrls?|videoUrl|firstFrame|lastFrame|mask|referenceImages?)$/i;

let base = location.origin; // the server's public URL (from /.well-known/x402)
let chainId = 0;
let account: string | null = null;
let items: Item[] = [];
let fields: Field[] = [];
let quoteTimer = 0;

function routePath(item: Item): string {
  return new URL(item.resource).pathname; // /api/generate/{model}/{operation}
}

function resolve(schema: Schema, root: Schema): Schema {
  if (schema.$ref) return resolve(root.$defs?.[schema.$ref.split("/").pop() ?? ""] ?? {}, root);
  if (schema.allOf?.length === 1) return resolve(schema.allOf[0], root);
  if (schema.anyOf) {
    const real = schema.anyOf.filter((s) => s.type !== "null");
    if (real.length === 1) return { ...resolve(real[0], root), default: schema.default, description: schema.description };
  }
  return schema;
}

function control(name: string, s: Schema, required: boolean): Field {
  let input: Field["input"];
  const isArray = s.type === "array";
  // The catalog describes media inputs ("Media input: an https URL ..."); the name is a fallback.
  const described = /^Media input/.test((isArray ? s.items?.description : s.description) ?? "");
  const stringy = s.type === "string" || (isArray && s.items?.type === "string");
  const mediaKind = !s.enum && stringy && (described || MEDIA_NAME.test(name));
  if (s.enum) {
    const select = document.createElement("select");
    if (!required) select.add(new Option("(default)", ""));
    for (const v of s.enum) select.add(new Option(String(v), String(v)));
    if (s.default != null) select.value = String(s.default);
    input = select;
  } else if (mediaKind) {
    const file = document.createElement("input");
    file.type = "file";
    file.accept = /video/i.test(name) ? "video/*" : "image/*";
    file.multiple = isArray;
    input = file;
  } else if (s.type === "string" && /prompt/i.test(name)) {
    input = document.createElement("textarea");
  } else {
    const box = document.createElement("input");
    box.type = s.type === "boolean" ? "checkbox" : s.type === "integer" || s.type === "number" ? "number" : "text";
    if (s.type === "boolean") box.checked = s.default === true;
    else if (s.default != null) box.placeholder = String(s.default);
    if (s.minimum != null) box.min = String(s.minimum);
    if (s.maximum != null) box.max = String(s.maximum);
    input = box;
  }
  input.name = name;
  input.required = required;
  return { name, schema: s, media: mediaKind ? (isArray ? "many" : "one") : null, input };
}

function renderForm(item: Item): void {
  const root = item.input.schema;
  const form = $<HTMLFormElement>("form");
  form.replaceChildren();
  fields = [];
  const required = new Set(root.required ?? []);
  for (const [name, raw] of Object.entries(root.properties ?? {})) {
    const field = control(name, resolve(raw, root), required.has(name));
    const label = document.createElement("label");
    label.textContent = name + (required.has(name) ? " *" : "");
    label.title = raw.description ?? "";
    label.append(field.input);
    form.append(label);
    fields.push(field);
    field.input.addEventListener("input", scheduleQuote);
    field.input.addEventListener("change", scheduleQuote);
  }
  $("route-info").textContent = `${item.description} — ${item.price.rule}`;
  scheduleQuote();
}

/** The JSON body of the form; media fields become blob URLs only when `uploads` are given. */
function body(uploads?: Map<string, string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const s = f.schema;
    if (f.media) {
      const urls = uploads?.get(f.name);
      if (urls?.length) out[f.name] = f.media === "many" ? urls : urls[0];
      else if (!uploads && (f.input as HTMLInputElement).files?.length) {
        // for a quote: a placeholder the size of the real list (uploads happen only when paying)
        const n = (f.input as HTMLInputElement).files!.length;
        out[f.name] = f.media === "many" ? Array(n).fill("https://example.com/pending.png") : "https://example.com/pending.png";
      }
      continue;
    }
    if (f.input instanceof HTMLInputElement && f.input.type === "checkbox") {
      if (f.input.checked !== (s.default === true)) out[f.name] = f.input.checked;
      continue;
    }
    const v = f.input.value.trim();
    if (!v) continue;
    if (s.type === "integer" || s.type === "number") out[f.name] = Number(v);
    else if (s.type === "array") out[f.name] = v.split(",").map((x) => x.trim()).filter(Boolean);
    else if (s.enum && typeof s.enum[0] === "number") out[f.name] = Number(v);
    else out[f.name] = v;
  }
  return out;
}

async function problemText(r: Response): Promise<string> {
  try {
    const p = (await r.json()) as { detail?: string; title?: string; code?: string };
    return `${p.title ?? r.statusText}: ${p.detail ?? ""}${p.code ? ` (${p.code})` : ""}`;
  } catch {
    return `${r.status} ${r.statusText}`;
  }
}

function scheduleQuote(): void {
  window.clearTimeout(quoteTimer);
  quoteTimer = window.setTimeout(quote, 250);
}

let quoteSeq = 0;

async function quote(): Promise<void> {
  const seq = ++quoteSeq; // answers to older forms are dropped: they may arrive after newer ones
  const item = current();
  const hasMedia = fields.some((f) => f.media && (f.input as HTMLInputElement).files?.length);
  const range = item.price.min === item.price.max ? `$${item.price.min}` : `$${item.price.min}–$${item.price.max}`;
  let price = range;
  let error = "";
  try {
    const r = await fetch(routePath(item).replace("/api/generate/", "/api/quote/"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body()),
    });
    if (r.ok) price = `$${((await r.json()) as { usd: string }).usd}`;
    else if (!hasMedia) error = await problemText(r);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  if (seq !== quoteSeq) return;
  $("quote").textContent = price;
  $("quote-error").textContent = error;
}

function current(): Item {
  return items[Number($<HTMLSelectElement>("route").value)];
}

function status(text: string, error = false): void {
  const el = $("status");
  el.textContent = text;
  el.className = error ? "error" : "";
}

/** POST `path` with `payload`; answers a 402 by paying from the wallet, once. */
async function paidPost(path: string, payload: unknown): Promise<Response> {
  const init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) };
  const first = await fetch(path, init);
  if (first.status !== 402 || !account) return first;
  const required = unb64json<PaymentRequired>(first.headers.get("PAYMENT-REQUIRED") ?? "");
  const offer = evmOffer(required);
  status(`Sign the payment of ${Number(offer.amount) / 1e6} USDC in your wallet…`);
  const header = await paymentHeader(account, required, offer);
  status("Paying…");
  return fetch(path, { ...init, headers: { ...init.headers, "PAYMENT-SIGNATURE": header } });
}

/** A file name the upload route takes: letters, digits, '.', '_', '-', starting with a letter or digit. */
function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/\.{2,}/g, ".").replace(/^[^A-Za-z0-9]+/, "");
  return cleaned.slice(-120) || "upload";
}

async function uploadFile(file: File): Promise<string> {
  const r = await paidPost("/api/upload", { filename: safeName(file.name), contentType: file.type || "image/png" });
  if (!r.ok) throw new Error(await problemText(r));
  const slot = (await r.json()) as { uploadId: string; uploadUrl: string; uploadHeaders: Record<string, string>; blobUrl: string };
  const put = await fetch(slot.uploadUrl, { method: "PUT", headers: slot.uploadHeaders, body: file });
  if (!put.ok) throw new Error(await problemText(put));
  const confirm = "/api/upload/confirm";
  const auth = await signIn(account!, base, confirm, chainId);
  const done = await fetch(confirm, {
    method: "POST",
    headers: { "Content-Type": "application/json", "SIGN-IN-WITH-X": auth },
    body: JSON.stringify({ uploadId: slot.uploadId, blobUrl: slot.blobUrl }),
  });
  if (!done.ok) throw new Error(await problemText(done));
  return slot.blobUrl;
}

async function generate(): Promise<void> {
  if (!account) return;
  window.clearTimeout(quoteTimer);
  void quote(); // the price of exactly what is being paid for
  $<HTMLButtonElement>("pay").disabled = true;
  $("result").replaceChildren();
  try {
    const uploads = new Map<string, string[]>();
    for (const f of fields) {
      const files = f.media ? Array.from((f.input as HTMLInputElement).files ?? []) : [];
      for (const file of files) {
        status(`Uploading ${file.name} (a paid upload slot)…`);
        uploads.set(f.name, [...(uploads.get(f.name) ?? []), await uploadFile(file)]);
      }
    }
    const r = await paidPost(routePath(current()), body(uploads));
    if (!r.ok) throw new Error(await problemText(r));
    const job = (await r.json()) as { jobId: string };
    status(r.status === 202 ? "Payment settling…" : "Paid. Generating…");
    await follow(job.jobId);
  } catch (e) {
    status(e instanceof Error ? e.message : String(e), true);
  } finally {
    updateButtons();
  }
}

/** Job events over SSE (fetch + a stream reader: EventSource cannot send the sign-in header). */
async function follow(jobId: string): Promise<void> {
  // The stream can drop (a proxy's idle timeout, a restart): follow again until the job has ended.
  for (let attempt = 0; attempt < 5; attempt++) {
    const job = await stream(jobId);
    if (job && TERMINAL.has(job.status)) return showResult(job);
    await new Promise((done) => setTimeout(done, 1000 * (attempt + 1)));
  }
  throw new Error(`Lost track of job ${jobId}: find it in your jobs below`);
}

async function stream(jobId: string): Promise<Job | null> {
  const path = `/api/jobs/${jobId}/events`;
  const header = await signIn(account!, base, path, chainId);
  const r = await fetch(path, { headers: { "SIGN-IN-WITH-X": header, Accept: "text/event-stream" } });
  if (!r.ok || !r.body) throw new Error(await problemText(r));
  const progress = $<HTMLProgressElement>("progress");
  progress.hidden = false;
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let job: Job | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (!data) continue;
      job = JSON.parse(data) as Job;
      progress.value = job.progress ?? 0;
      status(`Job ${job.jobId}: ${job.status}${job.progress ? ` (${job.progress} %)` : ""}`);
    }
  }
  progress.hidden = true;
  return job;
}

function media(job: Job, big: boolean): HTMLElement | null {
  const res = job.result;
  if (res?.imageUrl) {
    const img = document.createElement("img");
    img.src = res.imageUrl;
    img.alt = `result of ${job.jobId}`;
    return img;
  }
  if (res?.videoUrl) {
    if (!big && res.thumbnailUrl) {
      const img = document.createElement("img");
      img.src = res.thumbnailUrl;
      img.alt = `thumbnail of ${job.jobId}`;
      return img;
    }
    const video = document.createElement("video");
    video.src = res.videoUrl;
    video.controls = true;
    return video;
  }
  return null;
}

function refundText(job: Job): string {
  const r = job.refund;
  if (!r) return "";
  const tx = r.tx ? ` tx ${r.tx.slice(0, 10)}…` : "";
  return `refund $${r.amount ?? "?"} ${r.method ?? ""} ${r.status ?? ""}${tx}`.replace(/\s+/g, " ").trim();
}

function showResult(job: Job): void {
  const out = $("result");
  out.replaceChildren();
  out.dataset.jobId = job.jobId;
  out.dataset.status = job.status;
  const shown = media(job, true);
  if (shown) {
    out.append(shown);
    const link = document.createElement("a");
    link.href = job.result?.imageUrl ?? job.result?.videoUrl ?? "";
    link.download = job.jobId;
    link.textContent = "Download";
    out.append(link);
    status(`Done: ${job.jobId}`);
  } else {
    const msg = typeof job.error === "string" ? job.error : job.error?.message ?? "";
    status(`Job ${job.status}. ${msg} ${refundText(job)}`, job.status !== "complete");
  }
}

async function loadGallery(): Promise<void> {
  if (!account) return;
  const path = "/api/jobs?limit=24";
  const gallery = $("gallery");
  try {
    const header = await signIn(account, base, path, chainId);
    const r = await fetch(path, { headers: { "SIGN-IN-WITH-X": header } });
    if (!r.ok) throw new Error(await problemText(r));
    const { jobs } = (await r.json()) as { jobs: Job[] };
    gallery.replaceChildren();
    if (!jobs.length) gallery.textContent = "No jobs yet.";
    for (const job of jobs) {
      const fig = document.createElement("figure");
      fig.dataset.jobId = job.jobId;
      fig.dataset.status = job.status;
      const shown = media(job, false);
      if (shown) {
        const link = document.createElement("a");
        link.href = job.result?.imageUrl ?? job.result?.videoUrl ?? "";
        link.target = "_blank";
        link.append(shown);
        fig.append(link);
      }
      const cap = document.createElement("figcaption");
      cap.textContent = [job.model && `${job.model}/${job.operation}`, job.status, refundText(job)].filter(Boolean).join(" · ");
      fig.append(cap);
      gallery.append(fig);
    }
  } catch (e) {
    gallery.textContent = e instanceof Error ? e.message : String(e);
  }
}

function updateButtons(): void {
  $<HTMLButtonElement>("pay").disabled = !account;
  $<HTMLButtonElement>("gallery-load").disabled = !account;
  $("connect").textContent = account ? "Wallet connected" : "Connect wallet";
  $("account").textContent = account ? `${account.slice(0, 6)}…${account.slice(-4)}` : "";
}

async function connect(request: boolean): Promise<void> {
  try {
    account = (await accounts(request))[0] ?? null;
  } catch (e) {
    if (request) status(e instanceof Error ? e.message : String(e), true);
  }
  updateButtons();
}

async function main(): Promise<void> {
  const r = await fetch("/.well-known/x402");
  const known = (await r.json()) as { service: { url: string }; items: Item[] };
  base = known.service.url.replace(/\/$/, "");
  items = known.items.filter((i) => routePath(i).startsWith("/api/generate/"));
  chainId = Number(items[0]?.accepts.find((a) => a.network.startsWith("eip155:"))?.network.split(":")[1] ?? 0);
  const select = $<HTMLSelectElement>("route");
  items.forEach((item, i) => select.add(new Option(routePath(item).replace("/api/generate/", ""), String(i))));
  select.addEventListener("change", () => renderForm(current()));
  $("connect").addEventListener("click", () => void connect(true));
  $("pay").addEventListener("click", () => void generate());
  $("gallery-load").addEventListener("click", () => void loadGallery());
  renderForm(current());
  if (window.ethereum) await connect(false);
  document.body.dataset.ready = "1";
}

void main();
