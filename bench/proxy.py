"""Pass-through proxying: forebay against nginx, in front of the same origin.

What runs:

- origin: nginx, one worker, answering every path with the same ~60-byte JSON body
  (`return 200`), keep-alive on. It is as fast as an origin can be, so what is measured is the
  proxy in front of it, not the origin.
- reference proxy: nginx as a plain reverse proxy (one worker, a keep-alive upstream pool,
  HTTP/1.1 to the origin, X-Forwarded-For set): the bar to compare against.
- forebay: `forebay run --origin ... --store memory://` with its defaults (one worker), started
  from the interpreter running this script, logging at `warning`.

Each proxy under test gets CPU 0 to itself; the origin and wrk share CPU 1. Pinning both proxies
to the same single core gives them the same budget, and keeps the load generator and the origin
from stealing cycles from the proxy (on a two-core machine, unpinned, they would all contend and
the figures would mostly measure the scheduler). The origin is measured directly too, with wrk on
the same core, which gives the baseline the proxies' added latency is computed against.

For each target (origin direct, nginx, forebay) and each round:

- throughput: `wrk -t1 -c{connections} -d{duration}`, requests/s;
- latency at low load: `wrk -t1 -c1 -d{duration} --latency`, p50 and p99.

Rounds interleave the targets (rotating their order) so slow drift on the machine spreads over
all of them; the figures reported are medians over the rounds. "Added latency" is a proxy's
median p50 (p99) minus the origin's median p50 (p99).

Run with `python -m bench.proxy` (`make bench`); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    LOOPBACK,
    NGINX,
    WRK,
    BenchError,
    Service,
    Services,
    WrkResult,
    can_pin,
    cpu_snapshot,
    exit_on_sigterm,
    free_port,
    http_get,
    median,
    others_cores,
    run_wrk,
)
from bench.gateway import start_forebay_run
from bench.nginx_proxy import BODY, LOAD_CPU, PATH, PROXY_CPU, start_origin, start_proxy
from bench.report import (
    add_json_option,
    add_wrk_options,
    busy_lines,
    check_wrk_options,
    cpu_line,
    fmt_list,
    pct,
    print_json,
    progress,
    python_line,
    run_guarded,
    scenario_info,
    wrk_problem_lines,
)

# What the nginx proxy adds to the shared proxying location.
PROXY_LOCATION = (
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
)

TARGETS = ("origin", "nginx", "forebay")

# What "good enough" is: forebay/nginx throughput and forebay's added p50 at low load.
TARGET_RATIO = 0.6
TARGET_ADDED_P50_MS = 0.3
# CPU used by other processes during a measurement (in cores) above which it is suspect.
BUSY_CORES = 0.15


@dataclass
class Round:
    throughput: WrkResult
    latency: WrkResult
    cpu_percent: float  # the server under test's CPU use during the throughput run
    others_cores: float  # CPU used by processes not ours during both runs, in cores


@dataclass
class TargetRuns:
    name: str
    url: str
    server: Service  # the process group serving this target (the origin's, for "origin")
    rounds: list[Round] = field(default_factory=list)

    @property
    def rps(self) -> list[float]:
        return [r.throughput.requests_per_sec for r in self.rounds]

    @property
    def cpu(self) -> list[float]:
        return [r.cpu_percent for r in self.rounds]

    @property
    def others(self) -> list[float]:
        return [r.others_cores for r in self.rounds]

    @property
    def p50(self) -> list[float]:
        return [pct(r.latency, "50") for r in self.rounds]

    @property
    def p99(self) -> list[float]:
        return [pct(r.latency, "99") for r in self.rounds]

    def problems(self) -> list[str]:
        found = []
        for i, r in enumerate(self.rounds, 1):
            for kind, res in (("throughput", r.throughput), ("latency", r.latency)):
                found += [f"{self.name} round {i} {kind}: {p}" for p in res.problems()]
        return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy",
        description="Pass-through proxy benchmark: origin direct vs nginx vs forebay.",
    )
    add_wrk_options(parser, "connections for the throughput run (64)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    check_wrk_options(parser, args)
    return args


def start_targets(services: Services) -> dict[str, tuple[str, Service]]:
    """Start the origin, the nginx proxy and forebay; return each target's URL and server."""
    origin_port, origin_server = start_origin(services)
    origin = f"http://{LOOPBACK}:{origin_port}"
    nginx_port, nginx_server = start_proxy(services, "nginx-proxy", origin_port, PROXY_LOCATION)

    forebay_port, admin_port = free_port(), free_port()
    env = dict(os.environ, FOREBAY_LOG__LEVEL="warning")
    env.pop("FOREBAY_CONFIG", None)
    forebay_server = start_forebay_run(
        services,
        "forebay",
        [
            *("--origin", origin, "--store", "memory://"),
            *("--listen", f"{LOOPBACK}:{forebay_port}"),
            *("--admin-listen", f"{LOOPBACK}:{admin_port}"),
        ],
        admin_port=admin_port,
        env=env,
        cpu=PROXY_CPU,
    )
    return {
        "origin": (origin + PATH, origin_server),
        "nginx": (f"http://{LOOPBACK}:{nginx_port}{PATH}", nginx_server),
        "forebay": (f"http://{LOOPBACK}:{forebay_port}{PATH}", forebay_server),
    }


def check_targets(targets: dict[str, tuple[str, Service]]) -> None:
    """Each target answers 200 with the origin's body before anything is measured."""
    for name, (url, _) in targets.items():
        status, body = http_get(url)
        if status != 200 or body.decode(errors="replace") != BODY:
            raise BenchError(f"{name} answered {status} {body[:200]!r}, not the origin's body")


def measure(
    args: argparse.Namespace, targets: dict[str, tuple[str, Service]]
) -> dict[str, TargetRuns]:
    runs = {name: TargetRuns(name, *targets[name]) for name in TARGETS}
    urls = {name: url for name, (url, _) in targets.items()}
    if args.warmup > 0:
        for name in TARGETS:
            progress(f"warm-up {name} ({args.warmup:g}s)")
            run_wrk(
                urls[name],
                connections=args.connections,
                duration=args.warmup,
                cpu=LOAD_CPU,
            )
    servers = [server for _, server in targets.values()]
    for i in range(args.runs):
        shift = i % len(TARGETS)
        order = TARGETS[shift:] + TARGETS[:shift]
        for name in order:
            progress(f"round {i + 1}/{args.runs}: {name}")
            server = runs[name].server
            before = cpu_snapshot(servers)
            cpu_before, started = server.cpu_seconds(), time.monotonic()
            throughput = run_wrk(
                urls[name],
                connections=args.connections,
                duration=args.duration,
                cpu=LOAD_CPU,
            )
            used = server.cpu_seconds() - cpu_before
            cpu_percent = round(100.0 * used / (time.monotonic() - started), 1)
            latency = run_wrk(
                urls[name], connections=1, duration=args.duration, latency=True, cpu=LOAD_CPU
            )
            others = round(others_cores(before, cpu_snapshot(servers)), 2)
            runs[name].rounds.append(Round(throughput, latency, cpu_percent, others))
            if others >= BUSY_CORES:
                progress(f"  WARNING {name}: other processes used {others:.2f} cores meanwhile")
            for problem in throughput.problems() + latency.problems():
                progress(f"  WARNING {name}: {problem}")
    return runs


def summarize(runs: dict[str, TargetRuns]) -> dict[str, Any]:
    rps = {name: median(r.rps) for name, r in runs.items()}
    p50 = {name: median(r.p50) for name, r in runs.items()}
    p99 = {name: median(r.p99) for name, r in runs.items()}
    added50 = {n: round(p50[n] - p50["origin"], 6) for n in ("nginx", "forebay")}
    ratio = rps["forebay"] / rps["nginx"]
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_cpu_percent": {name: round(median(r.cpu), 1) for name, r in runs.items()},
        "ratio_forebay_nginx": ratio,
        "added_p50_ms": added50,
        "added_p99_ms": {n: round(p99[n] - p99["origin"], 6) for n in ("nginx", "forebay")},
        "target_met": {
            "throughput": ratio >= TARGET_RATIO,
            "latency": added50["forebay"] < TARGET_ADDED_P50_MS,
        },
        "per_run": {
            name: {
                "rps": r.rps,
                "p50_ms": r.p50,
                "p99_ms": r.p99,
                "server_cpu_percent": r.cpu,
                "others_cores": r.others,
            }
            for name, r in runs.items()
        },
    }


def render(
    summary: dict[str, Any],
    info: dict[str, Any],
    args: argparse.Namespace,
    problems: list[str],
) -> str:
    rps, p50, p99 = summary["rps"], summary["p50_ms"], summary["p99_ms"]
    added50, added99 = summary["added_p50_ms"], summary["added_p99_ms"]
    cpu, per_run = summary["server_cpu_percent"], summary["per_run"]
    lines = [
        f"Pass-through proxying: median of {args.runs} run(s), {args.duration:g}s per wrk run",
        "",
        f"{'target':<8} {'req/s':>8} {'cpu%':>5} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'+p50 ms':>7} {'+p99 ms':>7}",
    ]
    for name in TARGETS:
        extra = (
            f"{added50[name]:>7.3f} {added99[name]:>7.3f}"
            if name in added50
            else f"{'-':>7} {'-':>7}"
        )
        lines.append(
            f"{name:<8} {rps[name]:>8.0f} {cpu[name]:>5.0f} {p50[name]:>7.3f} "
            f"{p99[name]:>7.3f} {extra}"
        )
    ratio, fb50 = summary["ratio_forebay_nginx"], added50["forebay"]
    met = summary["target_met"]
    lines += [
        "",
        f"req/s: -t1 -c{args.connections}; p50, p99: -t1 -c1 (ms);"
        " +p50, +p99: added over the origin direct",
        "cpu%: the server's CPU use during the req/s run (100 = one core)",
        "others: CPU used by processes not ours during the target's round (cores)",
        "",
        f"forebay/nginx throughput: {ratio:.2f} (target >= {TARGET_RATIO})",
        f"forebay added p50:        {fb50:.3f} ms (target < {TARGET_ADDED_P50_MS} ms)",
        f"targets met:              throughput {'yes' if met['throughput'] else 'NO'}, "
        f"latency {'yes' if met['latency'] else 'NO'}",
        "",
        "per run (in order):",
    ]
    for name in TARGETS:
        run = per_run[name]
        lines.append(
            f"  {name:<8} req/s {fmt_list(run['rps'], '.0f')}"
            f" | cpu% {fmt_list(run['server_cpu_percent'], '.0f')}"
            f" | p50 {fmt_list(run['p50_ms'], '.3f')}"
            f" | p99 {fmt_list(run['p99_ms'], '.3f')}"
            f" | others {fmt_list(run['others_cores'], '.2f')}"
        )
    pinning = f"pinned: proxy CPU {PROXY_CPU}, origin+wrk CPU {LOAD_CPU}"
    lines += [
        "",
        python_line(info),
        cpu_line(info, pinning),
        f"tools:    {info['wrk']}; {info['nginx']}",
        f"command:  {info['command']}",
        f"wrk:      taskset -c {LOAD_CPU} wrk -t1 -c{args.connections} -d{args.duration:g}s URL"
        f" ; taskset -c {LOAD_CPU} wrk -t1 -c1 -d{args.duration:g}s --latency URL",
        f"URL:      http://{LOOPBACK}:PORT{PATH} (answer: {len(BODY)}-byte JSON body)",
    ]
    lines += busy_lines(max(max(run["others_cores"]) for run in per_run.values()), BUSY_CORES)
    lines += wrk_problem_lines(problems)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = scenario_info("bench.proxy", argv, {"wrk": [WRK, "-v"], "nginx": [NGINX, "-v"]})
    if not can_pin((PROXY_CPU, LOAD_CPU)):
        progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    runs: dict[str, TargetRuns] = {}

    def body() -> None:
        with Services(prefix="forebay-bench-proxy-") as services:
            targets = start_targets(services)
            check_targets(targets)
            runs.update(measure(args, targets))

    status = run_guarded(body)
    if status is not None:
        return status
    problems = [p for r in runs.values() for p in r.problems()]
    summary = summarize(runs)
    print(render(summary, info, args, problems))
    if args.json:
        print_json(
            {
                "scenario": "proxy",
                "runs": args.runs,
                "duration_s": args.duration,
                "connections": args.connections,
                "machine": info,
                **summary,
                "problems": problems,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
