"""bench.flood's results: one run, the summary over runs and modes, the text report and the
plots."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    median,
)
from bench.report import (
    progress,
    python_line,
)

IMG_DIR = Path(__file__).resolve().parent.parent / "docs" / "img"

# Targets.
TARGET_DRAIN = 1.10  # drain time over N / C
TARGET_READ_P99 = 2.0  # live-read p99 over the idle origin's

READ_LEAD = 1.0  # seconds of live reads before the flood starts
BUSY_CORES = 0.15  # CPU used by other processes during a run (cores) above which it is suspect


@dataclass
class Run:
    kind: str
    mode: str  # "direct", "fixed xM", "forebay"
    concurrency: int | None  # async.concurrency for fixed runs
    n: int
    capacity: float  # C, writes per second
    offered_rate: float  # writes per second, as sent
    send_s: float  # from the first write sent to the last one sent
    acked: int
    failed: int
    lost: int
    lost_acked: int
    unknown: int
    duplicates: int
    applied: int
    drained: bool
    drain_s: float | None
    drain_ratio: float | None
    reads: int
    read_errors: int
    read_p50_ms: float | None
    read_p99_ms: float | None
    read_p50_ratio: float | None
    read_p99_ratio: float | None
    origin_max_inflight: int
    origin_503: int
    repeats_ignored: int
    busy_share: float | None  # origin's workers busy over the drain (0..1)
    busy_share_after: float | None  # the same, once the last write was sent
    rate_after: float | None  # writes applied per second once the last write was sent, over C
    gateway: dict[str, Any] = field(default_factory=dict)  # deliveries, cpu, log problems
    cpu_percent: dict[str, float] = field(default_factory=dict)
    others_cores: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list, repr=False)
    origin_series: list[list[float]] = field(default_factory=list, repr=False)
    flood_start: float = 0.0
    flood_end: float = 0.0
    drain_end: float = 0.0

    def figures(self) -> dict[str, float | None]:
        return {
            "lost": float(self.lost),
            "duplicates": float(self.duplicates),
            "drain_ratio": self.drain_ratio,
            "read_p50_ratio": self.read_p50_ratio,
            "read_p99_ratio": self.read_p99_ratio,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("samples", "origin_series", "flood_start", "flood_end", "drain_end"):
            data.pop(key)
        return data


@dataclass
class Idle:
    p50_ms: float
    p99_ms: float
    reads: int
    errors: int


def modes(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    fixed = [(f"fixed x{m:g}", max(1, round(m * args.workers))) for m in args.fixed]
    return [("direct", None), *fixed, ("forebay", None)]


def summarize(
    args: argparse.Namespace, idles: dict[str, list[Idle]], rounds: dict[str, list[list[Run]]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, per_round in rounds.items():
        table: dict[str, dict[str, Any]] = {}
        for mode, _ in modes(args):
            runs = [r for runs in per_round for r in runs if r.mode == mode]
            table[mode] = _median_run(runs)
        best = best_fixed(table)
        out[kind] = {
            "capacity_per_s": args.workers / args.service,
            "ideal_drain_s": args.n / (args.workers / args.service),
            "idle_read_p50_ms": median([i.p50_ms for i in idles[kind]]),
            "idle_read_p99_ms": median([i.p99_ms for i in idles[kind]]),
            "modes": table,
            "best_fixed": best,
            "targets": targets(table, best),
        }
    return out


def _median_run(runs: list[Run]) -> dict[str, Any]:
    numeric = (
        "offered_rate",
        "send_s",
        "acked",
        "failed",
        "lost",
        "lost_acked",
        "unknown",
        "duplicates",
        "applied",
        "drain_s",
        "drain_ratio",
        "reads",
        "read_errors",
        "read_p50_ms",
        "read_p99_ms",
        "read_p50_ratio",
        "read_p99_ratio",
        "origin_max_inflight",
        "origin_503",
        "repeats_ignored",
        "busy_share",
        "busy_share_after",
        "rate_after",
        "others_cores",
    )
    doc: dict[str, Any] = {"runs": len(runs), "concurrency": runs[0].concurrency}
    for key in numeric:
        values = [getattr(r, key) for r in runs if getattr(r, key) is not None]
        doc[key] = round(median(values), 3) if values else None
    cpu = [r.cpu_percent["forebay"] for r in runs if "forebay" in r.cpu_percent]
    doc["gateway_cpu_percent"] = round(median(cpu), 1) if cpu else None
    doc["drained"] = all(r.drained for r in runs)
    doc["per_run"] = [r.to_dict() for r in runs]
    return doc


def _meets(row: dict[str, Any]) -> dict[str, bool]:
    drain, p99 = row["drain_ratio"], row["read_p99_ratio"]
    return {
        "lost": row["lost"] == 0,
        "duplicates": row["duplicates"] == 0,
        "drain": drain is not None and row["drained"] and drain <= TARGET_DRAIN,
        "read_p99": p99 is not None and p99 <= TARGET_READ_P99,
    }


def best_fixed(table: dict[str, dict[str, Any]]) -> str | None:
    """The fixed setting a team would keep: most targets met, then the smallest product of
    the drain and live-read p99 ratios."""
    fixed = [m for m in table if m.startswith("fixed")]
    if not fixed:
        return None

    def score(mode: str) -> tuple[int, float]:
        row = table[mode]
        met = sum(_meets(row).values())
        product = (row["drain_ratio"] or math.inf) * (row["read_p99_ratio"] or math.inf)
        return (-met, product)

    return min(fixed, key=score)


def targets(table: dict[str, dict[str, Any]], best: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {mode: _meets(row) for mode, row in table.items()}
    if best is not None and "forebay" in table:
        fb, bf = table["forebay"], table[best]
        versus = {}
        for key in ("lost", "duplicates", "drain_ratio", "read_p50_ratio", "read_p99_ratio"):
            a, b = fb[key], bf[key]
            versus[key] = a is not None and (b is None or a <= b)
        result["forebay_vs_best_fixed"] = versus
    return result


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(
    args: argparse.Namespace, summary: dict[str, Any], info: dict[str, Any], plots: list[str]
) -> str:
    c = args.workers / args.service
    lines = [
        f"Flood: {args.n} writes; origin W={args.workers} workers, S={args.service * 1000:g} ms"
        f" -> C={c:.0f}/s, N/C={args.n / c:.2f} s; median of {args.runs} run(s)",
    ]
    for kind, doc in summary.items():
        lines += [
            "",
            f"{kind}: idle origin read p50 {doc['idle_read_p50_ms']:.2f} ms,"
            f" p99 {doc['idle_read_p99_ms']:.2f} ms",
            f"{'mode':<11} {'conc':>4} {'offered/s':>9} {'failed':>6} {'lost':>5} {'acked':>5}"
            f" {'unknown':>7} {'dup':>4} {'drain':>6} {'read p50':>8} {'read p99':>8}"
            f" {'p50 ms':>7} {'p99 ms':>7} {'rd err':>6} {'o.max':>5} {'503s':>5}"
            f" {'gw cpu%':>7} {'others':>6}",
        ]
        for mode, row in doc["modes"].items():
            conc = "-" if row["concurrency"] is None else str(row["concurrency"])
            drain = _cell(row["drain_ratio"], ".2f") + ("" if row["drained"] else "*")
            lines.append(
                f"{mode:<11} {conc:>4} {_cell(row['offered_rate'], '.0f'):>9}"
                f" {row['failed']:>6.0f} {row['lost']:>5.0f} {row['lost_acked']:>5.0f}"
                f" {row['unknown']:>7.0f} {row['duplicates']:>4.0f} {drain:>6}"
                f" {_cell(row['read_p50_ratio'], '.2f'):>8}"
                f" {_cell(row['read_p99_ratio'], '.2f'):>8}"
                f" {_cell(row['read_p50_ms'], '.1f'):>7} {_cell(row['read_p99_ms'], '.1f'):>7}"
                f" {row['read_errors']:>6.0f}"
                f" {row['origin_max_inflight']:>5.0f} {row['origin_503']:>5.0f}"
                f" {_cell(row['gateway_cpu_percent'], '.0f'):>7} {row['others_cores']:>6.2f}"
            )
        lines.append(
            "origin busy (share of W working) over the drain | after the last write was sent;"
            " writes applied/s after it, over C:"
        )
        for mode, row in doc["modes"].items():
            lines.append(
                f"  {mode:<11} {_cell(row['busy_share'], '.2f')} | "
                f"{_cell(row['busy_share_after'], '.2f')}; {_cell(row['rate_after'], '.2f')}"
            )
        met = doc["targets"]
        fb = met.get("forebay", {})
        lines += [
            "",
            f"targets for forebay: 0 lost {_yes(fb.get('lost'))}, 0 applied twice"
            f" {_yes(fb.get('duplicates'))}, drain <= {TARGET_DRAIN} x N/C"
            f" {_yes(fb.get('drain'))}, live-read p99 <= {TARGET_READ_P99:g} x idle"
            f" {_yes(fb.get('read_p99'))}",
        ]
        versus = met.get("forebay_vs_best_fixed")
        if versus is not None:
            worse = [k for k, ok in versus.items() if not ok]
            lines.append(
                f"forebay vs the best fixed setting ({doc['best_fixed']}): "
                + (
                    "at least as good on every figure"
                    if not worse
                    else "worse on " + ", ".join(worse)
                )
            )
        fbrow = doc["modes"].get("forebay", {})
        for run in fbrow.get("per_run", []):
            g = run["gateway"]
            if "limit_median" in g:
                lines.append(
                    f"governor limit: min {g['limit_min']}, median {g['limit_median']},"
                    f" max {g['limit_max']}, last {g['limit_last']} (W = {args.workers});"
                    f" no-load latency {g.get('min_rtt_ms')} ms; breaker at most"
                    f" {g.get('breaker_max', 0):g}; deliveries {g.get('delivered')}"
                )
        for mode, row in doc["modes"].items():
            for run in row["per_run"]:
                log = run["gateway"].get("log")
                if log and log["count"]:
                    lines.append(
                        f"WARNING {mode}: {log['count']} warning/error line(s) in the log:"
                    )
                    lines += [f"    {line}" for line in log["first"]]
                if run["gateway"] and not run["gateway"].get("alive", True):
                    lines.append(f"WARNING {mode}: the gateway had exited before the run ended")
    lines += [
        "",
        "conc: async.concurrency of the fixed runs; offered/s: writes sent per second;",
        "failed: no 2xx for the client; lost: never applied; acked: of those, acknowledged;",
        "unknown: failed for the client but applied; dup: applied twice;",
        "drain: first write to last applied over N/C (* not all applied);",
        "read p50/p99: live reads during the flood over the idle origin's; o.max: most",
        "requests inside the origin at once; 503s: the origin's; rd err: live reads that failed",
        "(counted as taking the timeout); gw cpu%: the gateway's CPU use over the run (100 = one",
        "core); others: CPU used meanwhile by processes not ours, in cores.",
        "",
        python_line(info),
        f"cpu:      {info['cpu_model']}, {info['usable_cpus']} usable CPUs, not pinned",
        f"command:  {info['command']}",
        f"client:   {args.clients} tasks (gateway runs, closed loop); direct open loop;"
        f" timeout {args.timeout:g} s, no retries; live reads {args.read_rate:g}/s",
    ]
    lines += [f"plot:     {p}" for p in plots]
    busiest = max(
        (row["others_cores"] or 0.0 for doc in summary.values() for row in doc["modes"].values()),
        default=0.0,
    )
    if busiest >= BUSY_CORES:
        lines.append(
            f"WARNING: other processes used up to {busiest:.2f} cores during runs;"
            " those figures are noisy"
        )
    return "\n".join(lines)


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("met" if value else "NOT met")


# --- plots -------------------------------------------------------------------------------------


def plot(args: argparse.Namespace, kind: str, run: Run) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress(
            "matplotlib is not installed: no plots (install it in the venv with"
            " `.venv/bin/pip install matplotlib`, or pass --no-plot)"
        )
        return None
    t0 = run.flood_start
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[2, 1])
    s = run.samples
    t = [x["t"] - t0 for x in s]
    top.step(t, [x.get("limit", 0.0) for x in s], where="post", label="governor limit")
    top.step(
        t, [x.get("inflight", 0.0) for x in s], where="post", label="in flight (gateway metric)"
    )
    series = [p for p in run.origin_series if t0 - READ_LEAD <= p[0] <= run.drain_end + 0.5]
    top.plot(
        [p[0] - t0 for p in series],
        [p[1] for p in series],
        linewidth=0.8,
        alpha=0.7,
        label="inside the origin (50 ms samples)",
    )
    knee = "W workers" if kind == "pool" else "knee K = W"
    top.axhline(args.workers, color="grey", linestyle="--", linewidth=0.8, label=knee)
    top.set_ylabel("requests")
    top.legend(loc="upper right", fontsize=8)
    top.set_title(
        f"forebay, {kind} origin: {args.n} writes, W={args.workers}, S={args.service * 1000:g} ms"
        f" (C={args.workers / args.service:.0f}/s)",
        fontsize=10,
    )
    bottom.step(t, [x.get("queue", 0.0) for x in s], where="post", color="tab:red")
    bottom.set_ylabel("queue depth")
    bottom.set_xlabel("seconds since the first write")
    for ax in (top, bottom):
        ax.axvline(run.flood_end - t0, color="black", linewidth=0.6, linestyle=":")
        ax.axvline(run.drain_end - t0, color="black", linewidth=0.6, linestyle="-.")
        ax.grid(alpha=0.3)
    bottom.text(run.flood_end - t0, 0, " last write answered", fontsize=7, va="bottom")
    bottom.text(run.drain_end - t0, 0, " drained", fontsize=7, va="bottom")
    fig.tight_layout()
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    path = IMG_DIR / f"flood-{kind}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"docs/img/{path.name}"
