import { ApiError, api, attempt, flash, h, newestOnly, when } from "./api.js";

const form = document.getElementById("filters");
const out = document.getElementById("errors");

function sample(e, first) {
  const headers = (list) => list.map(([k, v]) => `${k}: ${v}`).join("\n");
  return h("details", { class: "sample", "data-request-id": e.request_id, open: first },
    h("summary", {},
      h("strong", {}, e.status), ` ${e.kind} · `, h("code", {}, `${e.method} ${e.path}${e.query ? `?${e.query}` : ""}`),
      ` · ${when(e.at)} · ${e.consumer || "anonymous"} · ${e.latency_ms.toFixed(1)} ms`),
    h("p", {}, "Request id ", h("code", {}, e.request_id)),
    h("h4", {}, "Request headers"), h("pre", {}, headers(e.request_headers)),
    h("h4", {}, "Response headers"), h("pre", {}, headers(e.response_headers)),
    h("h4", {}, "Response body (start)"), h("pre", {}, e.response_body));
}

const load = newestOnly(async (stale) => {
  const endpoint = form.elements.endpoint.value;
  let rows;
  try {
    rows = await api("GET", `/api/errors?limit=500${endpoint ? `&endpoint=${encodeURIComponent(endpoint)}` : ""}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      out.replaceChildren(h("p", { class: "notice" }, "Error capture is not available on this gateway's admin API."));
      return;
    }
    throw e;
  }
  if (stale()) return;
  const groups = new Map();
  for (const e of rows) {
    if (!groups.has(e.endpoint)) groups.set(e.endpoint, []);
    groups.get(e.endpoint).push(e);
  }
  if (!groups.size) {
    out.replaceChildren(h("p", { class: "muted", id: "no-errors" }, "No errors captured."));
    return;
  }
  out.replaceChildren(...[...groups].map(([name, list]) =>
    h("section", { class: "error-group", "data-endpoint": name },
      h("h2", {}, name, h("span", { class: "muted" }, ` ${list.length} recent`)),
      ...list.map((e, i) => sample(e, i === 0)))));
});

form.addEventListener("change", () => load().catch((e) => flash(e.message, "error")));
document.getElementById("clear").addEventListener("click", async () => {
  const endpoint = form.elements.endpoint.value;
  await attempt("Cleared", () => api("DELETE", `/api/errors${endpoint ? `?endpoint=${encodeURIComponent(endpoint)}` : ""}`));
  await load();
});

const endpoints = await api("GET", "/api/endpoints");
for (const e of endpoints) form.elements.endpoint.append(h("option", { value: e.id }, `${e.method} ${e.path}`));
form.elements.endpoint.append(h("option", { value: "unmatched" }, "unmatched paths"));
load().catch((e) => flash(e.message, "error"));
