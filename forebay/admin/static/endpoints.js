import { api, attempt, flash, h, newestOnly } from "./api.js";

const form = document.getElementById("filters");
const tbody = document.querySelector("#endpoints tbody");
const dialog = document.getElementById("edit");
let shown = [];
let editing = null;

// The filter lives in the address, so a filtered view can be shared and reloaded.
for (const [k, v] of new URLSearchParams(location.search)) {
  if (form.elements[k]) form.elements[k].value = v;
}

function query() {
  const params = new URLSearchParams();
  for (const name of ["method", "q", "state"]) {
    const v = form.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  return params.toString();
}

function settings(p) {
  const parts = [];
  if (p.cache) parts.push(`ttl ${p.cache.ttl}s`);
  if (p.max_attempts) parts.push(`${p.max_attempts} attempts`);
  if (p.max_age) parts.push(`give up after ${p.max_age}s`);
  if (p.ordering === "none") parts.push("unordered");
  if (p.rate_limit) parts.push(`limit ${p.rate_limit}`);
  if (p.consumer_rate_limit) parts.push(`per consumer ${p.consumer_rate_limit}`);
  if (p.invalidates?.length) parts.push(`invalidates ${p.invalidates.join(", ")}`);
  return parts.join(" · ");
}

function toggle(e, field, on) {
  const label = `${field} ${e.method} ${e.path}`;
  return h("input", {
    type: "checkbox",
    checked: on,
    "aria-label": label,
    "data-field": field,
    onchange: (ev) => change(e, patchFor(field, ev.target.checked, e.policy)),
  });
}

function patchFor(field, on, policy) {
  // async and cache only act on managed endpoints, so turning them on manages too.
  if (field === "managed") return { managed: on };
  if (field === "async") return on ? { managed: true, async: true } : { async: false };
  return on ? { managed: true, cache: policy.cache ?? { ttl: 60 } } : { cache_off: true };
}

function row(e) {
  const p = e.policy;
  return h(
    "tr",
    { "data-id": e.id, class: e.vanished ? "vanished" : null },
    h("td", {}, h("span", { class: `method m-${e.method}` }, e.method)),
    h("td", {}, h("code", {}, e.path), e.summary ? h("div", { class: "muted" }, e.summary) : null,
      e.vanished ? h("div", { class: "muted" }, "gone from its spec") : null),
    h("td", {}, toggle(e, "managed", p.managed)),
    h("td", {}, toggle(e, "async", p.async)),
    h("td", {}, toggle(e, "cache", p.cache !== null)),
    h("td", { class: "muted" }, settings(p)),
    h("td", {}, h("button", { type: "button", onclick: () => edit(e) }, "Edit"),
      p.cache !== null ? [" ", h("button", {
        type: "button",
        "aria-label": `purge cache of ${e.method} ${e.path}`,
        onclick: () => purgeEndpoint(e),
      }, "Purge")] : null),
  );
}

const load = newestOnly(async (stale) => {
  const q = query();
  history.replaceState(null, "", q ? `?${q}` : location.pathname);
  const found = await api("GET", `/api/endpoints${q ? `?${q}` : ""}`);
  if (stale()) return;
  shown = found;
  tbody.replaceChildren(...shown.map(row));
  document.getElementById("count").textContent = `${shown.length} endpoints`;
  tbody.dataset.loaded = q;
});

async function change(e, patch) {
  await attempt(`${e.method} ${e.path} saved`, () => api("PATCH", `/api/endpoints/${e.id}`, patch));
  await load();
}

const BULK = {
  "managed-async": { managed: true, async: true },
  "managed-on": { managed: true },
  "managed-off": { managed: false },
  "async-off": { async: false },
  "cache-on": { managed: true, cache: { ttl: 60 } },
  "cache-off": { cache_off: true },
};

document.getElementById("bulk").addEventListener("click", async (ev) => {
  const patch = BULK[ev.target.dataset?.bulk];
  if (!patch) return;
  const q = query();
  const result = await attempt(null, () => api("PATCH", `/api/endpoints${q ? `?${q}` : ""}`, patch));
  if (result) flash(`${result.changed} endpoints changed`);
  await load();
});

function edit(e) {
  editing = e;
  const f = document.getElementById("edit-form").elements;
  const p = e.policy;
  document.getElementById("edit-title").textContent = `${e.method} ${e.path}`;
  f.ttl.value = p.cache?.ttl ?? "";
  f.swr.value = p.cache?.stale_while_revalidate ?? "";
  f.max_attempts.value = p.max_attempts ?? "";
  f.max_age.value = p.max_age ?? "";
  f.ordering.value = p.ordering;
  f.invalidates.value = (p.invalidates ?? []).join(", ");
  f.rate_limit.value = p.rate_limit ?? "";
  f.consumer_rate_limit.value = p.consumer_rate_limit ?? "";
  dialog.showModal();
}

dialog.addEventListener("close", async () => {
  if (dialog.returnValue !== "save" || !editing) return;
  const f = document.getElementById("edit-form").elements;
  const num = (v) => (v.trim() === "" ? null : Number(v));
  const patch = {
    max_attempts: num(f.max_attempts.value),
    max_age: num(f.max_age.value),
    ordering: f.ordering.value,
    invalidates: f.invalidates.value.split(",").map((s) => s.trim()).filter(Boolean),
    // An empty field removes the limit.
    rate_limit: f.rate_limit.value.trim() || null,
    consumer_rate_limit: f.consumer_rate_limit.value.trim() || null,
  };
  const ttl = num(f.ttl.value);
  if (ttl === null) patch.cache_off = true;
  else patch.cache = { ...(editing.policy.cache ?? {}), ttl, stale_while_revalidate: num(f.swr.value) ?? 0 };
  if (ttl !== null) patch.managed = true;
  await change(editing, patch);
});

form.addEventListener("input", () => load().catch((e) => flash(e.message, "error")));
form.addEventListener("submit", (ev) => ev.preventDefault());

document.getElementById("import-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = document.getElementById("import-file").files[0];
  if (!file) return;
  const type = /\.ya?ml$/i.test(file.name) ? "application/yaml" : "application/json";
  const url = `/api/import?filename=${encodeURIComponent(file.name)}`;
  const report = await attempt(null, async () => api("POST", url, await file.text(), type));
  if (!report) return;
  const out = document.getElementById("import-result");
  out.hidden = false;
  out.textContent = [
    `${report.source} (${report.format}): ${report.endpoints} operations`,
    `added: ${report.added.length ? report.added.join(", ") : "none"}`,
    report.vanished.length ? `gone: ${report.vanished.join(", ")}` : "",
    ...report.skipped.map((s) => `skipped ${s.place}: ${s.problem}`),
  ].filter(Boolean).join("\n");
  flash(`Imported ${report.source}`);
  await load();
});

// Purging the response cache (`POST /api/cache/purge`): by path or pattern from the
// form, everything after a confirmation, or one endpoint from its row.
const purgeForm = document.getElementById("purge-form");
const purgeResult = document.getElementById("purge-result");
const TARGET = {
  path: { label: "Path", placeholder: "/v1/items/5" },
  pattern: { label: "Pattern", placeholder: "/v1/items/{id}" },
};

function purged(n) {
  return `Purged ${n} stored answer${n === 1 ? "" : "s"}`;
}

async function purge(body) {
  purgeResult.hidden = false;
  purgeResult.className = "";
  purgeResult.textContent = "Purging…";
  try {
    const result = await api("POST", "/api/cache/purge", body);
    purgeResult.textContent = purged(result.purged);
    purgeResult.dataset.purged = result.purged;
  } catch (e) {
    purgeResult.className = "error";
    purgeResult.textContent = e.message;
    delete purgeResult.dataset.purged;
  }
}

async function purgeEndpoint(e) {
  const result = await attempt(null, () => api("POST", "/api/cache/purge", { endpoint: e.id }));
  if (result) flash(`${purged(result.purged)} of ${e.method} ${e.path}`);
}

purgeForm.elements.by.addEventListener("change", () => {
  const t = TARGET[purgeForm.elements.by.value];
  document.getElementById("purge-target-label").textContent = t.label;
  purgeForm.elements.target.placeholder = t.placeholder;
});

purgeForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = purgeForm.elements;
  await purge({ [f.by.value]: f.target.value.trim() });
});

document.getElementById("purge-all").addEventListener("click", async () => {
  if (!confirm("Purge every stored answer of every endpoint?")) return;
  await purge({ all: true });
});

load().catch((e) => flash(e.message, "error"));
