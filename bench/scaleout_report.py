"""bench.scaleout's report: the medians of both parts and the text printed from them."""

from __future__ import annotations

import argparse
from typing import Any

from bench.accept_setup import LOAD_CPU, PATH, SERVER_CPU
from bench.common import median
from bench.flood_report import Idle, Run, _median_run
from bench.report import busy_lines, cpu_line, python_line, wrk_problem_lines
from bench.scaleout_accept import LABELS, TARGETS, Target

BUSY_CORES = 0.15  # CPU used by other processes during a run (cores) above which it is suspect
ROUND_FIGURES = (
    "rps",
    "p50_ms",
    "p99_ms",
    "gateway_cores",
    "redis_cores",
    "wrk_cores",
    "others_cores",
    "per_gateway_core",
    "per_busy_core",
)


def summarize_accept(targets: dict[str, Target]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name, target in targets.items():
        row: dict[str, Any] = {
            key: round(median([getattr(r, key) for r in target.rounds]), 3) for key in ROUND_FIGURES
        }
        acked = sum(r.acked for r in target.rounds + target.discarded)
        counts = [r.stored for r in target.rounds + target.discarded]
        stored = None if None in counts else sum(c or 0 for c in counts)
        row["durability"] = {
            "acknowledged": acked,
            "stored": stored,
            "ok": stored is not None and stored >= acked,
        }
        row["per_run"] = {key: [getattr(r, key) for r in target.rounds] for key in ROUND_FIGURES}
        row["discarded_busy"] = [
            {"rps": r.rps, "others_cores": r.others_cores} for r in target.discarded
        ]
        rows[name] = row
    one, two, lite = rows["redis-1"], rows["redis-2"], rows["sqlite-1"]
    return {
        "targets": rows,
        "two_over_one": round(two["rps"] / one["rps"], 3),
        "per_instance_efficiency": round(two["rps"] / one["rps"] / 2, 3),
        "per_gateway_core_two_over_one": round(
            two["per_gateway_core"] / one["per_gateway_core"], 3
        ),
        "redis_over_sqlite": round(one["rps"] / lite["rps"], 3),
    }


def summarize_flood(
    idles: dict[str, list[Idle]], rounds: dict[str, list[list[Run]]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, per_round in rounds.items():
        modes = sorted({r.mode for runs in per_round for r in runs})
        table = {
            mode: _median_run([r for runs in per_round for r in runs if r.mode == mode])
            for mode in modes
        }
        for mode, row in table.items():
            runs = [r for runs in per_round for r in runs if r.mode == mode]
            row["limit_medians"] = [r.gateway.get("limit_median", []) for r in runs]
            row["redis_cpu_percent"] = round(
                median([r.cpu_percent.get("redis", 0.0) for r in runs]), 1
            )
        out[kind] = {
            "idle_read_p50_ms": median([i.p50_ms for i in idles[kind]]),
            "idle_read_p99_ms": median([i.p99_ms for i in idles[kind]]),
            "modes": table,
        }
    return out


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_accept(args: argparse.Namespace, doc: dict[str, Any]) -> list[str]:
    rows = doc["targets"]
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"Accept (POST {PATH} -> 202, managed and async, origin a closed port): median of"
        f" {args.runs} run(s), {args.duration}s per run, {args.connections} connections in all"
        " (two instances: one wrk each, half the connections each)",
        "",
        f"{'target':<{width}} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'gw cores':>8}"
        f" {'redis':>5} {'wrk':>5} {'others':>6} {'per gw core':>11} {'per busy core':>13}",
    ]
    for name in TARGETS:
        r = rows[name]
        lines.append(
            f"{LABELS[name]:<{width}} {r['rps']:>7.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
            f" {r['gateway_cores']:>8.2f} {r['redis_cores']:>5.2f} {r['wrk_cores']:>5.2f}"
            f" {r['others_cores']:>6.2f} {r['per_gateway_core']:>11.0f}"
            f" {r['per_busy_core']:>13.0f}"
        )
    lines += [
        "",
        f"2 instances / 1 instance (Redis): {doc['two_over_one']:.2f}x req/s"
        f" (2.00 would be perfect scaling; per instance {doc['per_instance_efficiency']:.2f})",
        f"req/s per gateway core, 2 instances / 1: {doc['per_gateway_core_two_over_one']:.2f}"
        " (1.00: a second instance costs no extra CPU per request)",
        f"Redis / SQLite, one instance: {doc['redis_over_sqlite']:.2f}x req/s",
        "",
        "gw cores, redis, wrk: CPU time each used during the run over its length (1.00 = one"
        " core busy); per gw core: req/s over gw cores; per busy core: req/s over gw cores +"
        " redis + wrk; p50/p99: the worse wrk's",
        f"CPU {SERVER_CPU}: the first instance alone; CPU {LOAD_CPU}: the second instance, wrk"
        " and redis-server together (a 2-core machine has no third core)",
        "",
        "durability check (acknowledged = 2xx answers wrk and the checks counted; stored ="
        " rows in requests, or members of the Redis sorted set `all`):",
    ]
    for name in TARGETS:
        check = rows[name]["durability"]
        stored = "?" if check["stored"] is None else str(check["stored"])
        verdict = "ok" if check["ok"] else "LOST ACKNOWLEDGED WRITES (or could not count)"
        lines.append(
            f"  {LABELS[name]:<{width}} acknowledged {check['acknowledged']:>7},"
            f" stored {stored:>7}: {verdict}"
        )
    lines += ["", "per run (in order):"]
    for name in TARGETS:
        run = rows[name]["per_run"]
        lines.append(
            f"  {LABELS[name]:<{width}} req/s "
            + " / ".join(f"{v:.0f}" for v in run["rps"])
            + " | p99 "
            + " / ".join(f"{v:.1f}" for v in run["p99_ms"])
            + " | gw cores "
            + " / ".join(f"{v:.2f}" for v in run["gateway_cores"])
            + " | others "
            + " / ".join(f"{v:.2f}" for v in run["others_cores"])
        )
    return lines


def render_flood(args: argparse.Namespace, doc: dict[str, Any]) -> list[str]:
    c = args.workers / args.service
    lines = [
        f"Flood (bench.flood's forebay run: governor on, defaults) through 1 and 2 instances on"
        f" one Redis: {args.n} writes, W={args.workers}, S={args.service * 1000:g} ms ->"
        f" C={c:.0f}/s, N/C={args.n / c:.2f} s; median of {args.runs} run(s)",
    ]
    for kind, kdoc in doc.items():
        lines += [
            "",
            f"{kind}: idle origin read p50 {kdoc['idle_read_p50_ms']:.2f} ms,"
            f" p99 {kdoc['idle_read_p99_ms']:.2f} ms",
            f"{'gateways':<11} {'offered/s':>9} {'failed':>6} {'lost':>5} {'acked':>5}"
            f" {'dup':>4} {'drain':>6} {'read p50':>8} {'read p99':>8} {'p99 ms':>7}"
            f" {'o.max':>5} {'503s':>5} {'gw cpu%':>7} {'redis%':>6} {'others':>6}  limit(s)",
        ]
        for mode, row in kdoc["modes"].items():
            drain = _cell(row["drain_ratio"], ".2f") + ("" if row["drained"] else "*")
            limits = "; ".join(
                "+".join(f"{x:g}" for x in per_run) for per_run in row["limit_medians"]
            )
            lines.append(
                f"{mode:<11} {_cell(row['offered_rate'], '.0f'):>9} {row['failed']:>6.0f}"
                f" {row['lost']:>5.0f} {row['lost_acked']:>5.0f} {row['duplicates']:>4.0f}"
                f" {drain:>6} {_cell(row['read_p50_ratio'], '.2f'):>8}"
                f" {_cell(row['read_p99_ratio'], '.2f'):>8} {_cell(row['read_p99_ms'], '.1f'):>7}"
                f" {row['origin_max_inflight']:>5.0f} {row['origin_503']:>5.0f}"
                f" {_cell(row['gateway_cpu_percent'], '.0f'):>7} {row['redis_cpu_percent']:>6.0f}"
                f" {row['others_cores']:>6.2f}  {limits}"
            )
        for mode, row in kdoc["modes"].items():
            for run in row["per_run"]:
                log = run["gateway"].get("log")
                if log and log["count"]:
                    lines.append(f"WARNING {mode}: {log['count']} warning/error line(s) logged:")
                    lines += [f"    {line}" for line in log["first"]]
                if not run["gateway"].get("alive", True):
                    lines.append(f"WARNING {mode}: a gateway had exited before the run ended")
    lines += [
        "",
        "failed: no 2xx for the client; lost: never applied; acked: of those, acknowledged;",
        "dup: applied twice; drain: first write to last applied over N/C (* not all applied);",
        "read p50/p99: live reads during the flood over the idle origin's; o.max: most",
        "requests inside the origin at once; gw cpu%: all gateways together (100 = one core);",
        "limit(s): each instance's median governor limit, per run.",
    ]
    return lines


def render(
    args: argparse.Namespace,
    info: dict[str, Any],
    accept: dict[str, Any] | None,
    flood: dict[str, Any] | None,
    problems: list[str],
    logs: dict[str, dict[str, int]],
) -> str:
    lines: list[str] = [
        f"Redis: a private redis-server with appendonly yes, appendfsync always (as"
        f" docs/redis.md asks for production), pinned to CPU {LOAD_CPU}; {info['redis']};"
        f" CONFIG GET appendfsync: {info['redis_appendfsync']}",
        "",
    ]
    others: list[float] = []
    if accept is not None:
        lines += [*render_accept(args, accept), ""]
        others += [v for r in accept["targets"].values() for v in r["per_run"]["others_cores"]]
    if flood is not None:
        lines += [*render_flood(args, flood), ""]
        others += [r["others_cores"] or 0.0 for k in flood.values() for r in k["modes"].values()]
    pinning = (
        f"accept: gateway 1 on CPU {SERVER_CPU}, gateway 2 + wrk + redis on CPU {LOAD_CPU};"
        " flood: gateways and origin not pinned, redis on CPU 1"
    )
    lines += [
        python_line(info),
        cpu_line(info, pinning),
        f"tools:    {info['wrk']}; {info['redis']}",
        f"command:  {info['command']}",
        f"took:     {info['elapsed_s']:.0f} s",
    ]
    lines += busy_lines(max(others, default=0.0), BUSY_CORES, "runs")
    if accept is not None:
        lines += wrk_problem_lines(problems)
    if logs:
        lines += ["", "WARNING: forebay logged warnings or errors in the accept part:"]
        for name, found in logs.items():
            lines.append(f"  {name}:")
            lines += [f"    {n:>5} x {event}" for event, n in found.items()]
    return "\n".join(lines)
