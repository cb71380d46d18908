import { ApiError, api, attempt, flash, h, when } from "./api.js";

const out = document.getElementById("consumers");
const form = document.getElementById("create-form");

function showKey(issued) {
  const box = document.getElementById("new-key");
  box.hidden = false;
  box.replaceChildren(
    h("p", {}, `New key for ${issued.consumer}; it is shown this once, copy it now:`),
    h("code", { id: "issued-key" }, issued.key),
  );
}

function keyRow(c, k) {
  return h("tr", { "data-key": k.id, class: k.revoked_at ? "revoked" : null },
    h("td", {}, h("code", {}, k.shown)),
    h("td", {}, k.label ?? ""),
    h("td", {}, when(k.created_at)),
    h("td", {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active"),
    h("td", {}, k.revoked_at ? null : h("button", {
      type: "button",
      onclick: async () => {
        await attempt(`Key ${k.id} revoked`, () => api("DELETE", `/api/consumers/${encodeURIComponent(c.name)}/keys/${k.id}`));
        await load();
      },
    }, "Revoke")));
}

function windowText(w) {
  const refused = [];
  if (w.rate_limited) refused.push(`${w.rate_limited} rate limited (429)`);
  if (w.forbidden) refused.push(`${w.forbidden} forbidden (403)`);
  return `${w.requests} requests${refused.length ? `, ${refused.join(", ")}` : ""}`;
}

function usage(c) {
  if (!c.usage) {
    return h("p", { class: "usage muted" }, "Usage: counted by the worker processes, not shown here (see the gateway's metrics).");
  }
  const cell = (key, w) => h("span", {
    "data-window": key,
    "data-requests": w.requests,
    "data-rate-limited": w.rate_limited,
    "data-forbidden": w.forbidden,
  }, windowText(w));
  return h("p", { class: "usage" },
    "Last minute: ", cell("minute", c.usage.last_minute),
    " · Last hour: ", cell("hour", c.usage.last_hour));
}

function consumer(c) {
  const limit = h("input", { value: c.rate_limit ?? "", placeholder: "none", size: 12, "aria-label": `rate limit of ${c.name}` });
  return h("section", { class: "consumer", "data-name": c.name },
    h("h2", {}, c.name, h("span", { class: "muted" }, ` ${c.source}, since ${when(c.created_at)}`)),
    h("p", {},
      "Rate limit ", limit, " ",
      h("button", { type: "button", onclick: async () => {
        await attempt("Saved", () => api("PATCH", `/api/consumers/${encodeURIComponent(c.name)}`, { rate_limit: limit.value.trim() || null }));
        await load();
      } }, "Save"),
      " · Endpoints: ", c.endpoints ? c.endpoints.join(", ") : "all"),
    usage(c),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Label"), h("th", {}, "Created"), h("th", {}, "State"), h("th", {}, ""))),
      h("tbody", {}, ...c.keys.map((k) => keyRow(c, k)))),
    h("p", {},
      h("button", { type: "button", onclick: async () => {
        const issued = await attempt(null, () => api("POST", `/api/consumers/${encodeURIComponent(c.name)}/keys`, {}));
        if (issued) showKey(issued);
        await load();
      } }, "New key"), " ",
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete consumer ${c.name} and all its keys?`)) return;
        await attempt(`${c.name} deleted`, () => api("DELETE", `/api/consumers/${encodeURIComponent(c.name)}`));
        await load();
      } }, "Delete")));
}

async function load() {
  let rows;
  try {
    rows = await api("GET", "/api/consumers");
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      out.replaceChildren(h("p", { class: "notice" }, "Consumers are not available on this gateway's admin API."));
      form.hidden = true;
      return;
    }
    throw e;
  }
  out.replaceChildren(...(rows.length ? rows.map(consumer) : [h("p", { class: "muted" }, "No consumers yet.")]));
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = form.elements;
  const body = { name: f.name.value.trim() };
  if (f.rate_limit.value.trim()) body.rate_limit = f.rate_limit.value.trim();
  const eps = f.endpoints.value.split(",").map((s) => s.trim()).filter((s) => s && s !== "all");
  if (eps.length) body.endpoints = eps;
  const issued = await attempt(`${body.name} created`, () => api("POST", "/api/consumers", body));
  if (issued) { showKey(issued); form.reset(); }
  await load();
});

load().catch((e) => flash(e.message, "error"));

// Usage moves while the page is open: refresh just those lines, leaving forms alone.
setInterval(async () => {
  if (document.hidden) return;
  let rows;
  try {
    rows = await api("GET", "/api/consumers");
  } catch {
    return; // the next tick tries again; a failed refresh is not worth a message
  }
  for (const c of rows) {
    const section = out.querySelector(`.consumer[data-name="${CSS.escape(c.name)}"]`);
    section?.querySelector(".usage")?.replaceWith(usage(c));
  }
}, 3000);
