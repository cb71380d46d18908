"""The HTTP layer alone: uvicorn's own protocol against the data plane's, on one ASGI app.

What runs, each pinned to CPU 0 with wrk on CPU 1, one process, uvloop:

- `uvicorn (httptools)`: uvicorn's server with its httptools protocol, as `uvicorn --http
  httptools` runs it;
- `forebay.http`: uvicorn's server with the data plane's protocol (`forebay.http`);
- `raw (ceiling)`: an asyncio protocol on the same parser that answers every request with
  a constant 202 and runs no ASGI app at all: what the event loop and parser cost.

The app (`bench/http_layer_app.py`) reads the request body and answers 202 with a small
JSON body: the shape of an accepted write, without storing it. Every target gets, per
round, `wrk -t1 -c{connections} -d{duration} --latency` POSTing a 21-byte JSON body; rounds
interleave the targets; the figures are medians over the rounds.

Run with `python -m bench.http_layer`; `--help` lists the options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.common import (
    LOOPBACK,
    Services,
    WrkResult,
    can_pin,
    exit_on_sigterm,
    free_port,
    http_status,
    median,
    run_wrk,
)
from bench.report import (
    add_json_option,
    add_wrk_options,
    print_json,
    progress,
    python_line,
    run_guarded,
    scenario_info,
)

TARGETS = {
    "uvicorn (httptools)": "httptools",
    "forebay.http": "forebay",
    "raw (ceiling)": "raw",
}
SERVER_CPU, LOAD_CPU = 0, 1
POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"item": 1, "qty": 2}'
wrk.headers["Content-Type"] = "application/json"
"""


def answers_202(url: str) -> Callable[[], bool]:
    return lambda: http_status(url) == 202


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_layer",
        description="uvicorn's HTTP protocol against forebay's, serving one ASGI app.",
    )
    add_wrk_options(parser, "wrk connections (64)")
    add_json_option(parser)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, list[WrkResult]]:
    pin = can_pin()
    server_cpu = SERVER_CPU if pin else None
    load_cpu = LOAD_CPU if pin else None
    results: dict[str, list[WrkResult]] = {name: [] for name in TARGETS}
    with Services(prefix="forebay-bench-http-") as services:
        script = Path(services.dir) / "post.lua"
        script.write_text(POST_SCRIPT)
        urls = {}
        for name, kind in TARGETS.items():
            port = free_port()
            services.start(
                kind,
                [sys.executable, "-m", "bench.http_layer_app", kind, str(port)],
                cpu=server_cpu,
                ready=answers_202(f"http://{LOOPBACK}:{port}/ready"),
            )
            urls[name] = f"http://{LOOPBACK}:{port}/orders"
            if args.warmup:
                run_wrk(urls[name], duration=args.warmup, cpu=load_cpu, script=script)
        names = list(TARGETS)
        for round_ in range(args.runs):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                progress(f"round {round_ + 1}/{args.runs}: {name}")
                result = run_wrk(
                    urls[name],
                    connections=args.connections,
                    duration=args.duration,
                    latency=True,
                    cpu=load_cpu,
                    script=script,
                )
                for problem in result.problems():
                    progress(f"warning: {name}: {problem}")
                results[name].append(result)
    return results


def report(args: argparse.Namespace, results: dict[str, list[WrkResult]]) -> None:
    info = scenario_info("bench.http_layer", None, {"wrk": ["wrk", "--version"]})
    print(f"# HTTP layer: one ASGI app answering 202, {args.connections} connections")
    print(python_line(info))
    print(f"runs: {args.runs} x {args.duration} s; figures are medians\n")
    base = median([r.requests_per_sec for r in results["uvicorn (httptools)"]])
    print("| target | req/s | vs uvicorn | p50 | p99 |\n|---|---:|---:|---:|---:|")
    doc = {}
    for name, runs in results.items():
        rps = median([r.requests_per_sec for r in runs])
        p50 = median([r.p50_ms or 0.0 for r in runs])
        p99 = median([r.p99_ms or 0.0 for r in runs])
        print(f"| {name} | {rps:,.0f} | {rps / base:.2f} | {p50:.2f} ms | {p99:.2f} ms |")
        per_run = [r.requests_per_sec for r in runs]
        doc[name] = {"rps": rps, "p50_ms": p50, "p99_ms": p99, "runs": per_run}
    if args.json:
        print_json({"info": info, "results": doc})


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    args = parse_args(argv)
    results: dict[str, list[WrkResult]] = {}

    def body() -> None:
        results.update(measure(args))
        report(args, results)

    return run_guarded(body) or 0


if __name__ == "__main__":
    sys.exit(main())
