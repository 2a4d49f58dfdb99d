// The operator dashboard: /admin/api/* with the admin token (kept in this tab's sessionStorage only).
type Summary = {
  revenue: { day: string; model: string; payments: number; micros: string }[];
  revenueMicros: string;
  jobs: Record<string, number>;
  backends: { backend: string; jobs: Record<string, number>; finished?: number; meanLatencySeconds?: number | null; failureRate: number | null; healthy: boolean }[];
  refunds: { method: string; state: string; count: number; micros: string }[];
  recentRefunds: { job_id: string; payer: string; method: string; state: string; micros: number; tx_hash: string | null }[];
  reconcilerLagSeconds: number;
  refundLagSeconds: number;
};
type Audit = { ran: boolean; ok: boolean | null; problems?: string[]; error?: string };

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const usd = (micros: number | string) => `$${(Number(micros) / 1e6).toFixed(6).replace(/0{1,4}$/, "")}`;
const KEY = "studio402-admin-token";
const SVG = "http://www.w3.org/2000/svg";

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

/** A horizontal bar chart in SVG (no library: a few bars). */
function bars(target: HTMLElement, rows: [string, number][], label: (v: number) => string): void {
  const height = 22 * rows.length + 6;
  const svg = el("svg", { viewBox: `0 0 400 ${height}`, width: "100%", role: "img" });
  const max = Math.max(1, ...rows.map(([, v]) => v));
  rows.forEach(([name, value], i) => {
    const y = 4 + i * 22;
    svg.append(el("text", { x: 0, y: y + 13 }, name));
    svg.append(el("rect", { x: 120, y, width: Math.max(1, (value / max) * 200), height: 16, fill: "#0071e3", rx: 3 }));
    svg.append(el("text", { x: 126 + (value / max) * 200, y: y + 13 }, label(value)));
  });
  target.replaceChildren(svg);
}

function table(target: HTMLElement, head: string[], rows: (string | number)[][]): void {
  target.replaceChildren();
  if (!rows.length) rows = [["none", ...head.slice(1).map(() => "")]];
  const tr = document.createElement("tr");
  head.forEach((h) => tr.append(Object.assign(document.createElement("th"), { textContent: h })));
  target.append(tr);
  for (const row of rows) {
    const r = document.createElement("tr");
    row.forEach((c) => r.append(Object.assign(document.createElement("td"), { textContent: String(c) })));
    target.append(r);
  }
}

async function get<T>(path: string, token: string): Promise<T> {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) {
    const p = (await r.json().catch(() => ({}))) as { detail?: string };
    throw new Error(`${r.status}: ${p.detail ?? r.statusText}`);
  }
  return (await r.json()) as T;
}

function render(s: Summary): void {
  $("revenue-total").textContent = usd(s.revenueMicros);
  const perDay = new Map<string, number>();
  for (const r of s.revenue) perDay.set(r.day, (perDay.get(r.day) ?? 0) + Number(r.micros));
  bars($("revenue-chart"), [...perDay.entries()], usd);
  const perModel = new Map<string, number>();
  for (const r of s.revenue) perModel.set(r.model, (perModel.get(r.model) ?? 0) + Number(r.micros));
  bars($("model-chart"), [...perModel.entries()].sort((a, b) => b[1] - a[1]), usd);
  table($("revenue-table"), ["day", "model", "payments", "revenue"], s.revenue.map((r) => [r.day, r.model, r.payments, usd(r.micros)]));
  bars($("jobs-chart"), Object.entries(s.jobs), (v) => String(v));
  table(
    $("backends"),
    ["backend", "health", "jobs", "failure rate (1 h)", "mean latency"],
    s.backends.map((b) => [
      b.backend,
      b.healthy ? "ok" : "failing",
      Object.entries(b.jobs).map(([k, v]) => `${k} ${v}`).join(", "),
      b.failureRate == null ? "—" : `${(b.failureRate * 100).toFixed(1)} %`,
      b.meanLatencySeconds == null ? "—" : `${b.meanLatencySeconds.toFixed(2)} s`,
    ]),
  );
  table($("refunds"), ["method", "state", "count", "amount"], s.refunds.map((r) => [r.method, r.state, r.count, usd(r.micros)]));
  table(
    $("recent-refunds"),
    ["job", "payer", "state", "amount"],
    s.recentRefunds.map((r) => [r.job_id, `${r.payer.slice(0, 8)}…`, `${r.method} ${r.state}`, usd(r.micros)]),
  );
  $("lag").textContent = `reconciler lag ${s.reconcilerLagSeconds.toFixed(1)} s · refund lag ${s.refundLagSeconds.toFixed(1)} s`;
}

async function open(token: string): Promise<void> {
  $("admin-error").textContent = "";
  try {
    render(await get<Summary>("/admin/api/summary", token));
    sessionStorage.setItem(KEY, token);
    $("dash").hidden = false;
    document.body.dataset.ready = "1";
    const audit = await get<Audit>("/admin/api/audit", token);
    const el = $("audit");
    el.className = audit.ok ? "ok" : "bad";
    el.textContent = !audit.ran
      ? audit.error ?? "audit could not run"
      : audit.ok
        ? "Balanced: the ledger and the chain agree."
        : `Problems: ${(audit.problems ?? []).join("; ") || "unbalanced totals"}`;
  } catch (e) {
    $("admin-error").textContent = e instanceof Error ? e.message : String(e);
  }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void open(($("token") as HTMLInputElement).value);
});
const saved = sessionStorage.getItem(KEY);
if (saved) void open(saved);
