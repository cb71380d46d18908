import { api, every } from "./api.js";
import { Chart } from "./chart.js";

const pct = (v) => (v === null || v === undefined ? null : v * 100);
const charts = [
  new Chart(document.getElementById("chart-flow"), [
    { label: "accepted", key: "accepted_per_s" },
    { label: "delivered", key: "delivered_per_s" },
    { label: "dead", key: "dead_per_s" },
  ], { unit: "/s" }),
  new Chart(document.getElementById("chart-queue"), [{ label: "queued", key: "queue_depth" }]),
  new Chart(document.getElementById("chart-governor"), [
    { label: "limit", key: "governor_limit" },
    { label: "in flight", key: "in_flight" },
  ]),
  new Chart(document.getElementById("chart-latency"), [
    { label: "p50", key: "latency_p50_ms" },
    { label: "p99", key: "latency_p99_ms" },
  ], { unit: " ms" }),
  new Chart(document.getElementById("chart-cache"), [{ label: "hits", key: "cache_hit_pct" }],
    { unit: "%", fixedMax: 100 }),
  new Chart(document.getElementById("chart-errors"), [{ label: "5xx", key: "error_pct" }],
    { unit: "%" }),
];

const KEEP_SECONDS = 300;
let points = [];

every(1000, async () => {
  const since = points.length ? points[points.length - 1].t : null;
  const stats = await api("GET", `/api/stats${since === null ? "" : `?since=${since}`}`);
  for (const s of stats.samples) {
    points.push({ ...s, cache_hit_pct: pct(s.cache_hit_ratio), error_pct: pct(s.error_ratio) });
  }
  const horizon = (points.length ? points[points.length - 1].t : 0) - KEEP_SECONDS;
  points = points.filter((p) => p.t >= horizon);
  for (const chart of charts) chart.draw(points);
  document.getElementById("live-status").textContent =
    points.length ? `Last sample ${new Date(points[points.length - 1].t * 1000).toLocaleTimeString(undefined, { hour12: false })}.` : "Waiting for the first samples…";
});
