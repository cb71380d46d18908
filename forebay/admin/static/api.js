// The admin API as the dashboard's pages use it: the session cookie goes along by
// itself; changes carry the CSRF token that the server put in the page.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail;
    const text = Array.isArray(detail)
      ? detail.map((d) => `${d.where}: ${d.problem}`).join("; ")
      : detail || problem?.title || `HTTP ${status}`;
    super(text);
    this.status = status;
  }
}

export async function api(method, path, body, contentType) {
  const headers = { "X-CSRF-Token": csrf };
  let payload;
  if (body !== undefined) {
    payload = contentType ? body : JSON.stringify(body);
    headers["Content-Type"] = contentType ?? "application/json";
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (resp.status === 401 && !path.startsWith("/api/session")) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!resp.ok) {
    let problem = null;
    try { problem = await resp.json(); } catch { /* not JSON: the status says enough */ }
    throw new ApiError(resp.status, problem);
  }
  return resp.status === 204 ? null : resp.json();
}

// A page's loader, called again before its last answer came back (a filter typed
// letter by letter, a refresh timer): only the newest call may show what it got, or a
// slower, older answer would overwrite a newer one. The loader gets `stale()` to check
// after each await.
export function newestOnly(load) {
  let issued = 0;
  return (...args) => {
    const ticket = ++issued;
    return load(() => ticket !== issued, ...args);
  };
}

// A DOM element: h("td", {class: "x"}, "text", child, ...). Text is always text, never HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "disabled") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let flashTimer;
export function flash(message, kind = "ok") {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 3000);
}

// Runs an action, says how it went, and never leaves a rejected promise behind.
export async function attempt(what, action) {
  try {
    const result = await action();
    if (what) flash(what);
    return result;
  } catch (e) {
    flash(e.message, "error");
    return undefined;
  }
}

export function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return d.toLocaleString(undefined, { hour12: false });
}

export function stateBadge(state) {
  return h("span", { class: `badge s-${state}` }, state);
}

// Calls fn now and every `ms` while the page is visible; fn may be async.
export function every(ms, fn) {
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await fn(); } catch (e) { flash(e.message, "error"); } finally { busy = false; }
  };
  tick();
  return setInterval(tick, ms);
}

document.getElementById("logout")?.addEventListener("click", async () => {
  await api("DELETE", "/api/session");
  location.assign("/login");
});
