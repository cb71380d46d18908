import { api, attempt } from "./api.js";

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = document.getElementById("token").value;
  const ok = await attempt(null, () => api("POST", "/api/session", { token }));
  if (ok === undefined) return;
  const next = new URLSearchParams(location.search).get("next") || "/endpoints";
  // Only a path on this host: the parameter must not send anyone elsewhere.
  // (Browsers read "/\\host" like "//host", so a backslash second is refused too.)
  location.assign(/^\/(?![\/\\])/.test(next) ? next : "/endpoints");
});
