"""Cache hits: forebay's response cache against nginx's `proxy_cache`, in front of the same
origin, and the hit ratio of a read-heavy workload with 5% writes.

What runs:

- origin: nginx, one worker, answering every path and method with the same ~60-byte JSON
  body (`return 200`), keep-alive on.
- nginx: one worker, `proxy_cache` in front of the origin (a keep-alive upstream pool,
  `proxy_cache_valid 200 300s`, `proxy_cache_lock on`), the cache on the local disk
  (so, after the first read, in the page cache).
- forebay: `forebay run --origin ... --store sqlite:///...` with a config file caching
  `GET /v1/items/{id}` and `GET /v1/items` for 300 s; one worker, logging at `warning`.

The proxy under test is pinned to CPU 0, alone; the origin and wrk share CPU 1 (as in
`bench.proxy`). Each proxy is warmed (the entry stored) before it is measured; rounds
interleave nginx and forebay and the figures are medians over the rounds.

- hits: `wrk -t1 -c{connections} -d{duration} --latency` on one cached URL: requests/s,
  p50 and p99;
- read-heavy mix (forebay only: nginx's cache has no write invalidation to compare):
  a wrk script reading `/v1/items/{1..100}` and `/v1/items`, and PUTting an item 5% of
  the time. Each PUT invalidates the item and the collection. The hit ratio is read from
  forebay's `forebay_cache_requests_total` before and after.

Run with `python -m bench.cache` (`make bench-cache`); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    LOOPBACK,
    NGINX,
    WRK,
    BenchError,
    Services,
    WrkResult,
    can_pin,
    exit_on_sigterm,
    free_port,
    http_get,
    median,
    run_wrk,
)
from bench.gateway import clean_env, start_forebay_run
from bench.nginx_proxy import BODY, LOAD_CPU, PATH, PROXY_CPU, start_origin, start_proxy
from bench.report import (
    add_json_option,
    add_wrk_options,
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

TARGET_RATIO = 0.45
ADMIN_TOKEN = "bench-admin-token"
TARGETS = ("nginx", "forebay")

# What the caching nginx proxy adds to the shared proxy config: the cache zone (in {dir}) and
# the caching lines of the proxying location.
CACHE_PREAMBLE = """\
proxy_cache_path {dir}/cache levels=1:2 keys_zone=api:10m max_size=64m inactive=10m
                 use_temp_path=off;
"""
CACHE_LOCATION = (
    "proxy_cache api;",
    "proxy_cache_valid 200 300s;",
    "proxy_cache_lock on;",
    "add_header Cache-Status $upstream_cache_status;",
)

FOREBAY_CONFIG = """
endpoints:
  "GET /v1/items": {managed: true, cache: {ttl: 300}}
  "GET /v1/items/{id}": {managed: true, cache: {ttl: 300}}
  "PUT /v1/items/{id}": {managed: true}
admin: {token: %s}
log: {level: warning}
"""

# 95% reads over 100 items and their collection, 5% writes; wrk's own RNG, seeded per thread.
MIX_LUA = """
math.randomseed(42)
request = function()
  local r = math.random(100)
  local id = math.random(100)
  if r <= 5 then
    return wrk.format("PUT", "/v1/items/" .. id, {["Content-Type"] = "application/json"},
                      '{"qty": 1}')
  elseif r <= 10 then
    return wrk.format("GET", "/v1/items")
  end
  return wrk.format("GET", "/v1/items/" .. id)
end
"""

_COUNT = re.compile(r'^forebay_cache_requests_total\{result="(\w+)"\} ([\d.e+]+)$', re.M)


@dataclass
class Runs:
    hits: dict[str, list[WrkResult]] = field(default_factory=lambda: {t: [] for t in TARGETS})
    mix: list[WrkResult] = field(default_factory=list)
    mix_ratio: list[float] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache",
        description="Cache hits: forebay vs nginx proxy_cache; hit ratio with 5%% writes.",
    )
    add_wrk_options(parser, "connections (64)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    check_wrk_options(parser, args)
    return args


def cache_counts(admin_port: int) -> dict[str, float]:
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{admin_port}/metrics",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    return {name: float(value) for name, value in _COUNT.findall(text)}


def start(services: Services) -> tuple[dict[str, str], int]:
    origin_port, _ = start_origin(services)
    preamble = CACHE_PREAMBLE.format(dir=services.subdir("nginx-cache"))
    nginx_port, _ = start_proxy(services, "nginx-cache", origin_port, CACHE_LOCATION, preamble)
    config = Path(services.subdir("forebay")) / "forebay.yaml"
    config.write_text(FOREBAY_CONFIG % ADMIN_TOKEN)
    port, admin_port = free_port(), free_port()
    start_forebay_run(
        services,
        "forebay",
        [
            # A SQLite file, not memory://: the config's endpoints are seeded into the
            # store before the gateway opens it, and a memory store would not keep them.
            *("--config", str(config), "--store", f"sqlite:///{config.parent}/forebay.db"),
            *("--origin", f"http://{LOOPBACK}:{origin_port}"),
            *("--listen", f"{LOOPBACK}:{port}", "--admin-listen", f"{LOOPBACK}:{admin_port}"),
        ],
        admin_port=admin_port,
        env=clean_env(),
        cpu=PROXY_CPU,
    )
    urls = {
        "nginx": f"http://{LOOPBACK}:{nginx_port}",
        "forebay": f"http://{LOOPBACK}:{port}",
    }
    for name, base in urls.items():
        for _ in range(2):  # the first read stores the entry, the second is a hit
            status, body = http_get(base + PATH)
            if status != 200 or body.decode() != BODY:
                raise BenchError(f"{name} answered {status} {body[:200]!r}")
    return urls, admin_port


def measure(args: argparse.Namespace, urls: dict[str, str], admin_port: int, d: Path) -> Runs:
    runs = Runs()
    script = d / "mix.lua"
    script.write_text(MIX_LUA)
    if args.warmup > 0:
        for name in TARGETS:
            progress(f"warm-up {name} ({args.warmup:g}s)")
            run_wrk(
                urls[name] + PATH, connections=args.connections, duration=args.warmup, cpu=LOAD_CPU
            )
    for i in range(args.runs):
        order = TARGETS if i % 2 == 0 else TARGETS[::-1]
        for name in order:
            progress(f"round {i + 1}/{args.runs}: {name} hits")
            result = run_wrk(
                urls[name] + PATH,
                connections=args.connections,
                duration=args.duration,
                latency=True,
                cpu=LOAD_CPU,
            )
            runs.hits[name].append(result)
        progress(f"round {i + 1}/{args.runs}: forebay read-heavy mix (5% writes)")
        before = cache_counts(admin_port)
        runs.mix.append(
            run_wrk(
                urls["forebay"],
                connections=args.connections,
                duration=args.duration,
                latency=True,
                cpu=LOAD_CPU,
                script=script,
            )
        )
        after = cache_counts(admin_port)
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        served = delta.get("hit", 0.0) + delta.get("coalesced", 0.0)
        total = sum(delta.values())
        runs.mix_ratio.append(served / total if total else 0.0)
    return runs


def summarize(runs: Runs) -> dict[str, Any]:
    rps = {t: median([r.requests_per_sec for r in runs.hits[t]]) for t in TARGETS}
    p50 = {t: median([pct(r, "50") for r in runs.hits[t]]) for t in TARGETS}
    p99 = {t: median([pct(r, "99") for r in runs.hits[t]]) for t in TARGETS}
    ratio = rps["forebay"] / rps["nginx"]
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "ratio_forebay_nginx": ratio,
        "target_met": ratio >= TARGET_RATIO,
        "mix": {
            "rps": median([r.requests_per_sec for r in runs.mix]),
            "p50_ms": median([pct(r, "50") for r in runs.mix]),
            "p99_ms": median([pct(r, "99") for r in runs.mix]),
            "hit_ratio": median(runs.mix_ratio),
        },
        "per_run": {
            **{t: [r.requests_per_sec for r in runs.hits[t]] for t in TARGETS},
            "mix": [r.requests_per_sec for r in runs.mix],
            "mix_hit_ratio": runs.mix_ratio,
        },
    }


def render(
    summary: dict[str, Any], info: dict[str, Any], args: argparse.Namespace, problems: list[str]
) -> str:
    rps, p50, p99, mix = summary["rps"], summary["p50_ms"], summary["p99_ms"], summary["mix"]
    per = summary["per_run"]
    lines = [
        f"Cache hits: median of {args.runs} run(s), {args.duration:g}s per wrk run,"
        f" -t1 -c{args.connections}",
        "",
        f"{'target':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}   per run (req/s)",
    ]
    for t in TARGETS:
        lines.append(
            f"{t:<8} {rps[t]:>8.0f} {p50[t]:>7.3f} {p99[t]:>7.3f}   {fmt_list(per[t], '.0f')}"
        )
    ratio = summary["ratio_forebay_nginx"]
    lines += [
        "",
        f"forebay/nginx on hits: {ratio:.2f} (target >= {TARGET_RATIO}:"
        f" {'met' if summary['target_met'] else 'NOT met'})",
        "",
        "read-heavy mix through forebay (95% GET over 101 URLs, 5% PUT invalidating):",
        f"  {mix['rps']:.0f} req/s, p50 {mix['p50_ms']:.3f} ms, p99 {mix['p99_ms']:.3f} ms,"
        f" hit ratio {mix['hit_ratio']:.3f}"
        f" (per run {fmt_list(per['mix_hit_ratio'], '.3f')})",
        "",
        python_line(info),
        cpu_line(info, f"pinned: proxy CPU {PROXY_CPU}, origin+wrk CPU {LOAD_CPU}"),
        f"tools:    {info['wrk']}; {info['nginx']}",
        f"command:  {info['command']}",
    ]
    lines += wrk_problem_lines(problems)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = scenario_info("bench.cache", argv, {"wrk": [WRK, "-v"], "nginx": [NGINX, "-v"]})
    if not can_pin((PROXY_CPU, LOAD_CPU)):
        progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    found: list[Runs] = []

    def body() -> None:
        with Services(prefix="forebay-bench-cache-") as services:
            urls, admin_port = start(services)
            found.append(measure(args, urls, admin_port, services.dir))

    status = run_guarded(body)
    if status is not None:
        return status
    runs = found[0]
    problems = [
        f"{name}: {p}" for name, rs in runs.hits.items() for r in rs for p in r.problems()
    ] + [f"mix: {p}" for r in runs.mix for p in r.problems()]
    summary = summarize(runs)
    print(render(summary, info, args, problems))
    if args.json:
        print_json({"scenario": "cache", "machine": info, **summary, "problems": problems})
    return 0


if __name__ == "__main__":
    os.environ.pop("FOREBAY_CONFIG", None)
    sys.exit(main())
