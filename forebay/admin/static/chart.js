// A small line chart on a canvas: a few series over time, the y axis from zero to a
// rounded maximum, the latest value of each series in its legend. No library needed.
const COLORS = ["#2563eb", "#ea580c", "#059669"];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit}`;
}

export class Chart {
  // series: [{label, key}], span: seconds shown, unit: appended to values.
  constructor(figure, series, { unit = "", span = 300, fixedMax = null } = {}) {
    this.figure = figure;
    this.canvas = figure.querySelector("canvas");
    this.series = series;
    this.unit = unit;
    this.span = span;
    this.fixedMax = fixedMax;
    this.legend = document.createElement("div");
    this.legend.className = "legend";
    figure.append(this.legend);
  }

  // The canvas takes the figure's width (CSS), drawn at the screen's pixel density.
  size() {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.getBoundingClientRect();
    this.w = Math.max(200, Math.round(box.width));
    this.h = Math.max(100, Math.round(box.height));
    if (this.canvas.width !== this.w * ratio) {
      this.canvas.width = this.w * ratio;
      this.canvas.height = this.h * ratio;
    }
    this.canvas.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  draw(points) {
    this.size();
    const ctx = this.canvas.getContext("2d");
    const { w, h } = this;
    const left = 44, right = 8, top = 8, bottom = 18;
    ctx.clearRect(0, 0, w, h);
    const now = points.length ? points[points.length - 1].t : Date.now() / 1000;
    // The window grows with the data from one minute to `span`, so a fresh page shows
    // lines rather than a sliver at the right edge.
    const first = points.length ? points[0].t : now;
    const span = Math.min(this.span, Math.max(60, now - first));
    const t0 = now - span;
    let max = 0;
    for (const p of points) for (const s of this.series) max = Math.max(max, p[s.key] ?? 0);
    max = this.fixedMax ?? niceMax(max);
    const x = (t) => left + ((t - t0) / span) * (w - left - right);
    const y = (v) => top + (1 - v / max) * (h - top - bottom);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    ctx.strokeStyle = "#e5e7eb";
    ctx.lineWidth = 1;
    for (const frac of [0, 0.5, 1]) {
      const yy = y(max * frac);
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText(fmt(max * frac, ""), left - 4, yy);
    }
    ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
    ctx.fillText(span >= 120 ? `-${Math.round(span / 60)} min` : `-${Math.round(span)} s`, left, h - 4);
    ctx.textAlign = "right";
    ctx.fillText("now", w - right, h - 4);
    ctx.lineWidth = 1.75;
    this.series.forEach((s, i) => {
      ctx.strokeStyle = COLORS[i % COLORS.length];
      ctx.beginPath();
      let pen = false;
      for (const p of points) {
        const v = p[s.key];
        if (v === null || v === undefined || p.t < t0) { pen = false; continue; }
        if (pen) ctx.lineTo(x(p.t), y(v)); else ctx.moveTo(x(p.t), y(v));
        pen = true;
      }
      ctx.stroke();
      // The newest value as a dot, so a series with one sample shows too.
      const lastSeen = [...points].reverse().find((p) => p[s.key] !== null && p[s.key] !== undefined);
      if (lastSeen) {
        ctx.fillStyle = COLORS[i % COLORS.length];
        ctx.beginPath();
        ctx.arc(x(lastSeen.t), y(lastSeen[s.key]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    });
    const last = points[points.length - 1] ?? {};
    this.legend.replaceChildren(...this.series.map((s, i) => {
      const item = document.createElement("span");
      item.style.setProperty("--c", COLORS[i % COLORS.length]);
      item.dataset.key = s.key;
      item.dataset.value = String(last[s.key] ?? "");
      item.textContent = `${s.label} ${fmt(last[s.key], this.unit)}`;
      return item;
    }));
    // For tests and for people reading the DOM: how many samples, the largest value seen.
    this.figure.dataset.points = String(points.length);
    this.figure.dataset.peak = String(Math.max(0, ...points.flatMap((p) => this.series.map((s) => p[s.key] ?? 0))));
  }
}
