import { api, attempt, every, h, stateBadge, when } from "./api.js";

const id = document.getElementById("request").dataset.id;
const DONE = new Set(["succeeded", "failed", "dead", "cancelled"]);
let timer;

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "")];
}

function response(r) {
  if (!r) return h("p", { class: "muted" }, "None yet.");
  const headers = r.headers.map(([k, v]) => `${k}: ${v}`).join("\n");
  return h("div", {},
    h("p", {}, "Status ", h("strong", { id: "response-status" }, r.status),
      r.body_encoding === "base64" ? " (binary body, base64)" : ""),
    h("pre", { class: "headers" }, headers),
    h("pre", { class: "body", id: "response-body" }, r.body || "(empty body)"));
}

async function act(what) {
  await attempt(what === "replay" ? "Queued again" : "Cancelled", () =>
    api("POST", `/api/requests/${id}/${what}`));
  await load();
}

async function load() {
  const r = await api("GET", `/api/requests/${encodeURIComponent(id)}`);
  document.getElementById("request").dataset.state = r.status;
  document.getElementById("summary").replaceChildren(
    ...fact("State", stateBadge(r.status)),
    ...fact("Endpoint", r.endpoint),
    ...fact("Request", h("code", {}, `${r.method} ${r.target}`)),
    ...fact("Consumer", r.consumer || "anonymous"),
    ...fact("Accepted", when(r.accepted_at)),
    ...fact("Updated", when(r.updated_at)),
    ...fact("Next attempt", when(r.next_attempt_at)),
    ...fact("Ordering key", h("code", {}, r.ordering_key)),
    ...fact("Status URL", h("code", {}, r.status_url)),
    ...fact("Callback", r.callback),
  );
  const buttons = [];
  if (r.status === "queued") buttons.push(h("button", { type: "button", onclick: () => act("cancel") }, "Cancel"));
  if (r.status === "dead") buttons.push(h("button", { type: "button", onclick: () => act("replay") }, "Replay"));
  document.getElementById("actions").replaceChildren(...buttons);
  document.querySelector("#attempts tbody").replaceChildren(
    ...r.attempts.map((a) => h("tr", {},
      h("td", { class: "num" }, a.number),
      h("td", {}, when(a.at)),
      h("td", {}, a.status ?? ""),
      h("td", {}, a.latency_ms === null ? "" : `${a.latency_ms.toFixed(1)} ms`),
      h("td", {}, a.error ?? ""))),
  );
  document.getElementById("response").replaceChildren(response(r.response));
  if (DONE.has(r.status) && timer !== undefined) { clearInterval(timer); timer = undefined; }
  else if (!DONE.has(r.status) && timer === undefined) timer = every(1000, load);
}

load().catch((e) => {
  document.getElementById("summary").replaceChildren(h("p", { class: "error" }, e.message));
});
