"""bench.accept's report: the summary of the rounds and the text printed from it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from bench.accept_setup import (
    BASELINE,
    BUSY_CORES,
    FASTAPI,
    FOREBAY,
    FSYNC_PROBES,
    LABELS,
    LOAD_CPU,
    PATH,
    REDIS_QUEUE,
    SERVER_CPU,
    TARGET_P99_MS,
    TARGET_VS_FASTAPI,
    TARGET_VS_NGINX,
    TARGETS,
    WRK_SCRIPT,
    Target,
)
from bench.common import (
    LOOPBACK,
    median,
)
from bench.report import (
    busy_lines,
    cpu_line,
    fmt_list,
    python_line,
    wrk_problem_lines,
)


def summarize(targets: dict[str, Target]) -> dict[str, Any]:
    rps = {name: median(t.rps) for name, t in targets.items()}
    p50 = {name: median(t.p50) for name, t in targets.items()}
    p99 = {name: median(t.p99) for name, t in targets.items()}
    ratios: dict[str, dict[str, float]] = {}
    met: dict[str, dict[str, bool]] = {}
    for name in FOREBAY:
        ratios[name] = {
            "vs_nginx": rps[name] / rps["nginx"],
            **{f"vs_{other}": rps[name] / rps[other] for other in FASTAPI},
        }
        met[name] = {
            "vs_nginx": ratios[name]["vs_nginx"] >= TARGET_VS_NGINX,
            "vs_fastapi": ratios[name][f"vs_{BASELINE}"] >= TARGET_VS_FASTAPI,
            "p99": p99[name] < TARGET_P99_MS,
        }
    durability: dict[str, dict[str, Any]] = {}
    for name, t in targets.items():
        if name in FOREBAY:
            acked = sum(i.acked for i in t.instances)
            stored_values = [i.stored for i in t.instances]
            stored = None if None in stored_values else sum(i or 0 for i in stored_values)
        elif name in FASTAPI:
            acked, stored = t.acked, t.stored
        else:
            continue
        durability[name] = {
            "acknowledged": acked,
            "stored": stored,
            "ok": stored is not None and stored >= acked,
        }
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_cpu_percent": {n: round(median(t.cpu), 1) for n, t in targets.items()},
        "idle_delivery_per_s": _median_or_none(
            [r.idle_delivery for r in targets["forebay-delivery"].rounds]
        ),
        "ratios": ratios,
        "target_met": met,
        "durability_check": durability,
        "per_run": {
            name: {
                "rps": t.rps,
                "p50_ms": t.p50,
                "p99_ms": t.p99,
                "server_cpu_percent": t.cpu,
                "others_cores": t.others,
                "non_2xx_3xx": [r.result.non_2xx_3xx for r in t.rounds],
                "discarded_busy": [
                    {"rps": r.result.requests_per_sec, "others_cores": r.others_cores}
                    for r in t.discarded
                ],
                **(
                    {
                        "delivered_by_end": [r.delivered for r in t.rounds],
                        "backlog_at_end": [r.backlog for r in t.rounds],
                        "idle_delivery_per_s": [r.idle_delivery for r in t.rounds],
                    }
                    if name in FOREBAY
                    else {}
                ),
            }
            for name, t in targets.items()
        },
    }


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def _yes(flag: bool) -> str:
    return "met" if flag else "NOT met"


def render(
    summary: dict[str, Any],
    info: dict[str, Any],
    args: argparse.Namespace,
    problems: list[str],
    forebay_logs: dict[str, str],
) -> str:
    rps, p50, p99 = summary["rps"], summary["p50_ms"], summary["p99_ms"]
    cpu, per_run = summary["server_cpu_percent"], summary["per_run"]
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"Durable accept (POST {PATH} -> 202): median of {args.runs} run(s), "
        f"{args.duration:g}s per wrk run, -t1 -c{args.connections}",
        "",
        f"{'target':<{width}} {'req/s':>8} {'cpu%':>5} {'p50 ms':>7} {'p99 ms':>7}",
    ]
    for name in TARGETS:
        lines.append(
            f"{LABELS[name]:<{width}} {rps[name]:>8.0f} {cpu[name]:>5.0f} "
            f"{p50[name]:>7.3f} {p99[name]:>7.3f}"
        )
    idle = summary["idle_delivery_per_s"]
    if idle is not None:
        lines += [
            "",
            f"forebay delivery to the origin with no incoming load: {idle:.0f} requests/s"
            f" (median; {args.delivery_sample}s after each 'accept + delivery' run)",
        ]
    lines += [
        "",
        "cpu%: the server under test's CPU use during the run (100 = one core; for FastAPI,"
        " the app only, Redis runs on the load CPU)",
        f"others: CPU used by processes not ours during the run (cores); a run with >="
        f" {BUSY_CORES} is measured again, at most {args.retries} time(s)",
        "",
        "targets (forebay):",
    ]
    for name in FOREBAY:
        ratio, met = summary["ratios"][name], summary["target_met"][name]
        lines += [
            f"  {LABELS[name]}:",
            f"    /nginx                  {ratio['vs_nginx']:>6.2f}"
            f"  (target >= {TARGET_VS_NGINX}: {_yes(met['vs_nginx'])})",
            f"    /FastAPI+redis no fsync {ratio['vs_fastapi-redis']:>6.2f}"
            f"  (target >= {TARGET_VS_FASTAPI:g}: {_yes(met['vs_fastapi'])})",
            f"    /FastAPI+redis fsync    {ratio['vs_fastapi-redis-fsync']:>6.2f}"
            "  (same durability as forebay; no target)",
            f"    p99                     {p99[name]:>6.2f} ms"
            f" (target < {TARGET_P99_MS:g} ms at -c{args.connections}: {_yes(met['p99'])})",
        ]
    lines += ["", "durability check (acknowledged = 2xx answers wrk and the checks counted):"]
    for name, check in summary["durability_check"].items():
        where = "rows in requests" if name in FOREBAY else f"items in redis list {REDIS_QUEUE}"
        verdict = "ok" if check["ok"] else "LOST ACKNOWLEDGED WRITES (or could not count)"
        lines.append(
            f"  {LABELS[name]:<{width}} acknowledged {check['acknowledged']:>7}, "
            f"{where} {check['stored'] if check['stored'] is not None else '?':>7}: {verdict}"
        )
    lines += [
        "  (redis no fsync: nothing was lost here only because nothing crashed; it keeps the",
        "   queue in memory and loses every acknowledged write on a crash or restart.",
        "   redis appendfsync always and forebay fsync before they answer.)",
        "",
        "per run (in order):",
    ]
    for name in TARGETS:
        run = per_run[name]
        lines.append(
            f"  {LABELS[name]:<{width}} req/s {fmt_list(run['rps'], '.0f')}"
            f" | cpu% {fmt_list(run['server_cpu_percent'], '.0f')}"
            f" | p50 {fmt_list(run['p50_ms'], '.2f')}"
            f" | p99 {fmt_list(run['p99_ms'], '.2f')}"
            f" | others {fmt_list(run['others_cores'], '.2f')}"
        )
        if name in FOREBAY:
            lines.append(
                f"  {'':<{width}} delivered by the end of the run"
                f" {fmt_list(run['delivered_by_end'], 'd')}"
                f" | backlog left {fmt_list(run['backlog_at_end'], 'd')}"
            )
        if name == "forebay-delivery" and any(run["idle_delivery_per_s"]):
            lines.append(
                f"  {'':<{width}} then, with no incoming load: delivered/s"
                f" {fmt_list(run['idle_delivery_per_s'], '.0f')}"
            )
        if run["discarded_busy"]:
            lines.append(
                f"  {'':<{width}} measured again after busy runs (discarded): req/s "
                + fmt_list([d["rps"] for d in run["discarded_busy"]], ".0f")
                + " | others "
                + fmt_list([d["others_cores"] for d in run["discarded_busy"]], ".2f")
            )
    pinning = f"pinned: server under test CPU {SERVER_CPU}, wrk+redis+origin CPU {LOAD_CPU}"
    lines += [
        "",
        python_line(info),
        cpu_line(info, pinning),
        f"disk:     temporary directory on {info['filesystem']}; write+fsync of 64 bytes:"
        f" {info['fsync_ms']:.3f} ms (median of {FSYNC_PROBES})",
        f"tools:    {info['wrk']}; {info['nginx']}; {info['redis']}",
        f"command:  {info['command']}",
        f"wrk:      taskset -c {LOAD_CPU} wrk -t1 -c{args.connections} -d{args.duration:g}s"
        f" --latency -s post.lua http://{LOOPBACK}:PORT{PATH}",
        f"post.lua: {' '.join(WRK_SCRIPT.split())}",
        "forebay:  a fresh process and empty database per round and variant, warmed up first;"
        " accept only = origin a closed port",
    ]
    lines += busy_lines(max(max(run["others_cores"]) for run in per_run.values()), BUSY_CORES)
    lines += wrk_problem_lines(problems)
    if forebay_logs:
        lines += ["", "forebay logged (level warning and above):"]
        for instance, text in forebay_logs.items():
            lines.append(f"--- {instance} (tail) ---")
            lines += text.splitlines()
    return "\n".join(lines)
