"""Scale-out: one forebay against two on the same Redis, for accepting and for a flood.

One private `redis-server` (`--appendonly yes --appendfsync always`, what docs/redis.md asks
for in production), in the temporary directory, serves every Redis run; each run has its own
key prefix, and the server is emptied between runs.

- Accept (`bench.scaleout_accept`): bench.accept's `forebay accept only` (`POST /orders`
  managed and async, the origin a closed port), measured with wrk -t1 --latency POSTing a
  small JSON body, `--connections` in all: one instance on SQLite (the reference), one on
  Redis, and two on Redis on two ports, each with its own wrk and half the connections at
  the same time (their requests/s summed, the worse p50 and p99 kept). The first instance
  is pinned to CPU 0, as in bench.accept; wrk and redis-server to CPU 1, and the second
  instance too, since a 2-core machine has no third core. CPU use of the gateways, Redis
  and wrk is measured, so the figures per core are not guessed. Rounds rotate the order of
  the three targets; every instance is fresh, warmed up first. Afterwards the store must
  hold at least as many requests as 2xx answers were counted.
- Flood (`bench.scaleout_flood`): bench.flood's `forebay` run (governor on, nothing tuned),
  against the simulated origin, through one instance and through two instances on the same
  Redis, the writes and the live reads split between the two. Same figures as bench.flood:
  lost, applied twice, drain over N/C, live-read p50 and p99 over the idle origin's.

Defaults: 3 rounds, 5 s per wrk run at 64 connections, floods of 3 000 writes on the pool
and the degrading origin; about nine minutes on a 2-core machine. Run with
`python -m bench.scaleout`; `--help` lists the options.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.accept_setup import (
    LOAD_CPU,
    REDIS,
    SERVER_CPU,
    WRK_SCRIPT,
    redis_cli,
    start_redis,
)
from bench.common import (
    LOOPBACK,
    WRK,
    Services,
    can_pin,
    exit_on_sigterm,
    free_port,
    tool_version,
)
from bench.flood_report import Idle, Run
from bench.report import (
    add_json_option,
    add_wrk_options,
    check_wrk_options,
    print_json,
    progress,
    run_guarded,
    scenario_info,
)
from bench.scaleout_accept import AcceptBench
from bench.scaleout_flood import measure_kind
from bench.scaleout_report import BUSY_CORES, render, summarize_accept, summarize_flood

PARTS = ("accept", "flood")
KINDS = ("pool", "degrading")
RETRY_PAUSE = 5.0  # seconds before measuring an accept target again after a busy run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaleout",
        description="One forebay against two on the same Redis: accept throughput and a flood.",
    )
    add_wrk_options(parser, "wrk connections in all, split between instances (64)")
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help=f"measure an accept target again, at most N times, when other processes used"
        f" >= {BUSY_CORES} cores meanwhile (1)",
    )
    parser.add_argument("--parts", default="accept,flood", help="what to run (accept,flood)")
    parser.add_argument(
        "--kinds", default="pool,degrading", help="flood origin kinds (pool,degrading)"
    )
    parser.add_argument("--n", type=int, default=3000, help="flood: writes per run (3000)")
    parser.add_argument("--workers", type=int, default=16, help="flood: origin workers W (16)")
    parser.add_argument("--service", type=float, default=0.05, help="flood: S, seconds (0.05)")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="flood: service time spread, +-share of S (0)"
    )
    parser.add_argument("--clients", type=int, default=32, help="flood: client tasks (32)")
    parser.add_argument("--timeout", type=float, default=2.0, help="flood: client timeout (2)")
    parser.add_argument("--read-rate", type=float, default=20.0, help="flood: live reads/s (20)")
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="flood: seconds a drain may take (60)"
    )
    add_json_option(parser)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory and print where"
    )
    args = parser.parse_args(argv)
    check_wrk_options(parser, args)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    if not args.kinds or any(k not in KINDS for k in args.kinds):
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    if args.connections < 2 or args.retries < 0:
        parser.error("--connections must be >= 2 (split between two instances), --retries >= 0")
    if (
        min(args.n, args.workers, args.clients) < 1
        or min(args.service, args.timeout, args.read_rate, args.drain_timeout) <= 0
    ):
        parser.error("flood counts must be >= 1, times and rates > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = scenario_info("bench.scaleout", argv, {"wrk": [WRK, "-v"]})
    info["redis"] = tool_version([REDIS, "--version"]).split(" sha=")[0]
    if not can_pin((SERVER_CPU, LOAD_CPU)):
        progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    benches: list[AcceptBench] = []
    idles: dict[str, list[Idle]] = {k: [] for k in args.kinds}
    rounds: dict[str, list[list[Run]]] = {k: [] for k in args.kinds}
    started = time.monotonic()

    def body() -> None:
        with Services(prefix="forebay-bench-scaleout-") as services:
            services.keep_dir = args.keep
            if args.keep:
                progress(f"keeping {services.dir}")
            port = start_redis(services, "redis", fsync=True)
            redis = next(s for s in services.started if s.name == "redis")
            info["redis_appendfsync"] = " ".join(
                redis_cli(port, "CONFIG", "GET", "appendfsync").split()[1:]
            )
            progress(f"redis-server: appendonly yes, appendfsync {info['redis_appendfsync']}")
            if "accept" in args.parts:
                script = services.dir / "post.lua"
                script.write_text(WRK_SCRIPT)
                closed = f"http://{LOOPBACK}:{free_port()}"
                bench = AcceptBench(args, services, script, redis, port, closed)
                benches.append(bench)
                bench.run(args.retries, BUSY_CORES, RETRY_PAUSE)
            if "flood" in args.parts:
                for i in range(args.runs):
                    for kind in args.kinds:
                        progress(f"flood round {i + 1}/{args.runs}: {kind} origin")
                        idle, runs = measure_kind(args, services, kind, i, (port, redis))
                        idles[kind].append(idle)
                        rounds[kind].append(runs)

    status = run_guarded(body)
    if status is not None:
        return status
    info["elapsed_s"] = time.monotonic() - started
    accept = summarize_accept(benches[0].targets) if benches else None
    flood = summarize_flood(idles, rounds) if "flood" in args.parts else None
    problems = (
        [p for t in benches[0].targets.values() for r in t.rounds for p in r.problems]
        if benches
        else []
    )
    logs = benches[0].logs if benches else {}
    print(render(args, info, accept, flood, problems, logs))
    if args.json:
        doc: dict[str, Any] = {
            "scenario": "scaleout",
            "runs": args.runs,
            "machine": info,
            "accept": accept,
            "flood": flood,
            "problems": problems,
            "forebay_logs": logs,
        }
        print_json(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
