"""Pieces the benchmark scenarios share around their measurements.

Command line: `add_wrk_options` (runs, duration, connections, warm-up) and `add_json_option`.
Running: `scenario_info` (machine, command, tool versions) and `run_guarded` (a BenchError or
Ctrl-C becomes an exit status). Reporting: `progress`, `pct`, `fmt_list`, the machine footer
lines, the busy and wrk-error lines, and `print_json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.common import BenchError, WrkResult, bench_command, machine_info, tool_version

NOT_PINNED = "NOT pinned (no taskset, or CPU 0 or 1 not ours)"


# --- command line ------------------------------------------------------------------------------


def add_wrk_options(parser: argparse.ArgumentParser, connections_help: str) -> None:
    """--runs, --duration, --connections and --warmup, as the wrk scenarios take them."""
    parser.add_argument("--runs", type=int, default=3, help="rounds over all targets (3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--connections", type=int, default=64, help=connections_help)
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up per target (2; 0 for none)"
    )


def check_wrk_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (exit 2, naming the options) what `add_wrk_options` cannot run with."""
    if args.runs < 1 or args.duration <= 0 or args.connections < 1 or args.warmup < 0:
        parser.error("--runs and --connections must be >= 1, --duration > 0, --warmup >= 0")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")


# --- running -----------------------------------------------------------------------------------


def scenario_info(
    module: str, argv: Sequence[str] | None, tools: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """machine_info() plus how this run was started and each tool's version line."""
    info = machine_info()
    info["command"] = bench_command(module, sys.argv[1:] if argv is None else argv)
    for key, version_argv in (tools or {}).items():
        info[key] = tool_version(version_argv)
    return info


def run_guarded(body: Callable[[], None]) -> int | None:
    """Run `body`; None when it finished, else the exit status after saying what went wrong."""
    try:
        body()
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return None


# --- reporting ---------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(result: WrkResult, percentile: str) -> float:
    """A latency percentile wrk printed (ms); fails when it printed none."""
    value = result.latency_ms.get(percentile)
    if value is None:
        raise BenchError(f"wrk printed no {percentile}th percentile:\n{result.output}")
    return value


def fmt_list(values: Sequence[float | int | None], spec: str) -> str:
    return " / ".join("-" if v is None else format(v, spec) for v in values)


def python_line(info: Mapping[str, Any]) -> str:
    return f"python:   {info['implementation']} {info['python']} ({info['interpreter']})"


def cpu_line(info: Mapping[str, Any], pinning: str) -> str:
    return f"cpu:      {info['cpu_model']}, {info['usable_cpus']} usable CPUs, " + (
        pinning if info["pinning"] else NOT_PINNED
    )


def busy_lines(busiest: float, busy_cores: float, what: str = "measurements") -> list[str]:
    if busiest < busy_cores:
        return []
    return [
        f"WARNING: other processes used up to {busiest:.2f} cores during {what};"
        " those figures are noisy"
    ]


def wrk_problem_lines(problems: Sequence[str]) -> list[str]:
    if problems:
        return ["", f"WARNING: {len(problems)} wrk run(s) reported errors:"] + [
            f"  {p}" for p in problems
        ]
    return ["", "wrk errors: none (no socket errors, no non-2xx/3xx responses)"]


def print_json(doc: Mapping[str, Any]) -> None:
    print(json.dumps(doc, indent=2))
