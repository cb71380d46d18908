import { api, attempt, every, flash, h, newestOnly, stateBadge, when } from "./api.js";

const form = document.getElementById("filters");
const tbody = document.querySelector("#requests tbody");
const older = document.getElementById("older");
const PAGE = 100;
let before = null; // paging: the last id of the page shown, when "Older" was clicked

for (const [k, v] of new URLSearchParams(location.search)) {
  if (form.elements[k] && k !== "live") form.elements[k].value = v;
}

// Request ids start with 48 bits of milliseconds in base32hex, so the id of "this
// instant, lowest random part" sorts before every request accepted later: the API's
// `before` id filter then serves as an upper bound in time.
const B32HEX = "0123456789abcdefghijklmnopqrstuv";
function idAt(ms) {
  // 6 time bytes + 16 random bytes = 176 bits; base32 pads them with 4 zero bits to 36 digits.
  let n = BigInt(Math.floor(ms)) << 132n;
  let out = "";
  for (let i = 0; i < 36; i++) {
    out = B32HEX[Number(n & 31n)] + out;
    n >>= 5n;
  }
  return out;
}

function filters() {
  const f = form.elements;
  const params = new URLSearchParams();
  for (const name of ["state", "endpoint_id", "consumer"]) {
    const v = f[name].value.trim();
    if (v) params.set(name, v);
  }
  return params;
}

function address() {
  const params = filters();
  for (const name of ["since", "until"]) if (form.elements[name].value) params.set(name, form.elements[name].value);
  return params.toString();
}

function actions(r) {
  if (r.status === "dead") {
    return h("button", { type: "button", onclick: () => act(r, "replay") }, "Replay");
  }
  if (r.status === "queued") {
    return h("button", { type: "button", onclick: () => act(r, "cancel") }, "Cancel");
  }
  return null;
}

async function act(r, what) {
  await attempt(`${what === "replay" ? "Replayed" : "Cancelled"} ${r.id}`, () =>
    api("POST", `/api/requests/${r.id}/${what}`));
  await load();
}

function row(r) {
  return h(
    "tr",
    { "data-id": r.id, "data-state": r.status },
    h("td", {}, h("a", { href: `/requests/${r.id}` }, h("code", {}, r.id))),
    h("td", {}, stateBadge(r.status)),
    h("td", {}, r.endpoint),
    h("td", {}, h("code", {}, `${r.method} ${r.target}`)),
    h("td", {}, r.consumer || h("span", { class: "muted" }, "anonymous")),
    h("td", { class: "num" }, r.attempts),
    h("td", {}, when(r.accepted_at)),
    h("td", {}, when(r.updated_at)),
    h("td", {}, actions(r)),
  );
}

const load = newestOnly(async (stale) => {
  const q = address();
  history.replaceState(null, "", q ? `?${q}` : location.pathname);
  const params = filters();
  params.set("limit", String(PAGE));
  const until = form.elements.until.value;
  const bound = until ? idAt(new Date(until).getTime() + 1000) : null;
  const cursor = before ?? bound;
  if (cursor) params.set("before", cursor);
  let rows = await api("GET", `/api/requests?${params}`);
  if (stale()) return;
  older.hidden = rows.length < PAGE;
  const since = form.elements.since.value;
  if (since) {
    const from = new Date(since).getTime();
    rows = rows.filter((r) => new Date(r.accepted_at).getTime() >= from);
  }
  tbody.replaceChildren(...rows.map(row));
  tbody.dataset.count = String(rows.length);
  const counts = (await api("GET", "/api/requests/counts")).counts;
  if (stale()) return;
  document.getElementById("counts").replaceChildren(
    ...Object.entries(counts).map(([s, n]) => h("span", {}, stateBadge(s), ` ${n}`)),
  );
  const dead = counts.dead ?? 0;
  document.getElementById("dead-actions").hidden = dead === 0;
  document.getElementById("dead-count").textContent = `${dead} dead`;
});

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = form.elements.id.value.trim();
  if (id) location.assign(`/requests/${encodeURIComponent(id)}`);
});
form.addEventListener("change", () => { before = null; load().catch((e) => flash(e.message, "error")); });
older.addEventListener("click", () => {
  before = tbody.lastElementChild?.dataset.id ?? null;
  form.elements.live.checked = false;
  load().catch((e) => flash(e.message, "error"));
});
document.getElementById("replay-all").addEventListener("click", async () => {
  const params = new URLSearchParams();
  for (const name of ["endpoint_id", "consumer"]) {
    if (form.elements[name].value.trim()) params.set(name, form.elements[name].value.trim());
  }
  const result = await attempt(null, () => api("POST", `/api/requests/replay?${params}`));
  if (result) flash(`${result.replayed} requests queued again`);
  await load();
});

const endpoints = await api("GET", "/api/endpoints");
const select = form.elements.endpoint_id;
const chosen = new URLSearchParams(location.search).get("endpoint_id");
for (const e of endpoints) select.append(h("option", { value: e.id }, `${e.method} ${e.path}`));
if (chosen) select.value = chosen;

every(2000, () => (form.elements.live.checked || !tbody.dataset.count ? load() : null));
