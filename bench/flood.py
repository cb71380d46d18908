"""Flood: N writes far faster than the origin can take them, and what becomes of them.

The origin (`bench/origin_sim.py`, its own process) has a physical capacity C:

- `pool`: W workers, each request holding one for S seconds; C = W / S.
- `degrading`: a database-backed app whose service time grows past a knee K = W and which
  fails a share of requests with 503 past 2K; throughput peaks at C = K / S, then falls.

For each kind, N writes (`POST /orders/{i}`, each with its own `Idempotency-Key`) are sent
while a light stream of live reads (`GET /items/{i}`, `--read-rate` per second) measures what
the flood does to everyone else. Ways to send them:

- direct: straight to the origin, open loop at the same offered rate as the gateway runs
  (each write its own request on schedule), a client timeout (`--timeout`) and no retries;
  the live reads go straight to the origin too.
- fixed xM: forebay with `POST /orders/{id}` asynchronous, the governor off and
  `async.concurrency` = M x W: the hand-tuned setting a team would otherwise pick.
- forebay: forebay with the endpoint asynchronous and the governor on, nothing tuned.

For the gateway runs, `--clients` client tasks send the writes as fast as the gateway
acknowledges them (closed loop); the rate they reach is the offered rate used for `direct`.
The live reads pass through the gateway, as they would in production.

Figures, per run:

- failed: writes the client got no 2xx for (timeout, error, 503);
- lost: writes sent and never applied by the origin once the run is over (the drain has
  finished, or stopped making progress, or `--drain-timeout` passed); "acked" of them: those
  acknowledged (201 direct, 202 by the gateway) and never applied;
- unknown: writes the client saw fail that were applied anyway (a retry would duplicate them);
- dup: writes applied more than once by the origin;
- drain: from the first write sent to the last one applied, divided by N / C (1.0 is the
  physical limit);
- read p50 / p99: the live reads sent between the first write and the end of the drain,
  divided by the idle origin's read p50 / p99 (measured first, direct, at 100 reads/s). A read
  that fails counts as taking the client timeout.

Targets: 0 lost, 0 applied twice, drain within 1.10 x N/C, live-read p99 within 2x idle, and
forebay at least as good as the best fixed setting on every figure.

During gateway runs `/metrics` (admin API) is sampled every 100 ms: `forebay_governor_limit`,
`forebay_origin_inflight`, `forebay_queue_depth` (the gateway refreshes them once a second).
With matplotlib installed, the forebay runs are plotted to `docs/img/flood-<kind>.png`.

Run with `python -m bench.flood`; `--help` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.common import (
    LOOPBACK,
    BenchError,
    Service,
    Services,
    cpu_snapshot,
    exit_on_sigterm,
    free_port,
    http_ready,
    median,
    others_cores,
)
from bench.flood_client import (
    Flood,
    Reader,
    Reads,
    closed_loop,
    drain,
    log_problems,
    open_loop,
    origin_reset,
    origin_stats,
    sample_metrics,
    settle,
)
from bench.flood_report import (
    READ_LEAD,
    Idle,
    Run,
    modes,
    plot,
    render,
    summarize,
)
from bench.gateway import clean_env, start_forebay_run
from bench.report import (
    add_json_option,
    print_json,
    progress,
    run_guarded,
    scenario_info,
)

KINDS = ("pool", "degrading")

IDLE_READS = 200  # reads measured on the idle origin, at IDLE_RATE per second
IDLE_RATE = 100.0


GATEWAY_CONFIG = """\
endpoints:
  "POST /orders/{{id}}": {{managed: true, async: true}}
governor: {{enabled: {governor}}}
async: {{concurrency: {concurrency}}}
log: {{level: warning}}
admin: {{token: "{token}"}}
"""


# --- helpers -----------------------------------------------------------------------------------


def _ratio(value: float | None, base: float) -> float | None:
    return None if value is None or base <= 0 else value / base


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 3)


async def flood_run(
    args: argparse.Namespace,
    target: str,
    origin: str,
    gateway_admin: tuple[str, str] | None,
    rate: float | None,
    tag: str,
) -> tuple[Flood, bool, float, list[dict[str, float]]]:
    """The flood itself: writes to `target`; returns the flood, whether it drained, when
    the drain ended and the /metrics samples."""
    samples: list[dict[str, float]] = []
    stop = asyncio.Event()
    sampler = None
    if gateway_admin is not None:
        sampler = asyncio.create_task(sample_metrics(*gateway_admin, samples, stop))
    try:
        if rate is None:
            flood = await closed_loop(target, args.n, args.clients, args.timeout, tag)
        else:
            flood = await open_loop(target, args.n, rate, args.timeout, tag)
        deadline = flood.first + args.drain_timeout
        drained = await drain(origin, flood.acked, deadline, samples if sampler else None)
        drain_end = time.monotonic()
        await asyncio.sleep(0.3)  # a last few samples after the drain
    finally:
        stop.set()
        if sampler is not None:
            with contextlib.suppress(Exception):
                await sampler
    return flood, drained, drain_end, samples


def measure_run(
    args: argparse.Namespace,
    services: Services,
    kind: str,
    mode: str,
    origin: str,
    origin_service: Service,
    idle: Idle,
    rate: float | None = None,
    concurrency: int | None = None,
) -> Run:
    settle(origin)
    origin_reset(origin)
    tag = secrets.token_hex(4)
    gateway: Service | None = None
    gateway_admin: tuple[str, str] | None = None
    target = origin
    if mode != "direct":
        gateway, target, gateway_admin = start_gateway(
            services, args, kind, mode, origin, concurrency
        )
    watched = [s for s in (gateway, origin_service) if s is not None]
    cpu0 = {s.name: s.cpu_seconds() for s in watched}
    snap0, t0 = cpu_snapshot(watched), time.monotonic()
    reads_max = int(args.read_rate * (READ_LEAD + args.drain_timeout + 30))
    reader = Reader(target, args.read_rate, reads_max, args.timeout)
    reads = Reads()
    try:
        time.sleep(READ_LEAD)  # live traffic is there before the flood
        flood, drained, drain_end, samples = asyncio.run(
            flood_run(args, target, origin, gateway_admin, rate, tag)
        )
    finally:
        with contextlib.suppress(BenchError):
            reads = reader.finish()
        reader.close()
    elapsed = time.monotonic() - t0
    cpu = {
        s.name.split("-")[0]: round(100.0 * (s.cpu_seconds() - cpu0[s.name]) / elapsed, 1)
        for s in watched
        if s.alive()
    }
    others = round(others_cores(snap0, cpu_snapshot(watched)), 2)
    gateway_info: dict[str, Any] = {}
    if gateway is not None:
        if samples:
            last = samples[-1]
            gateway_info["delivered"] = {
                k.removeprefix("delivered_"): int(v)
                for k, v in last.items()
                if k.startswith("delivered_")
            }
            gateway_info["accepted"] = int(last.get("accepted", 0))
            limits = [s["limit"] for s in samples if "limit" in s and mode == "forebay"]
            if limits:
                gateway_info["limit_min"] = round(min(limits), 1)
                gateway_info["limit_max"] = round(max(limits), 1)
                gateway_info["limit_median"] = round(median(limits), 1)
                gateway_info["limit_last"] = round(limits[-1], 1)
            rtts = [s["min_rtt"] for s in samples if s.get("min_rtt")]
            if rtts and mode == "forebay":
                gateway_info["min_rtt_ms"] = round(rtts[-1] * 1000, 2)
            gateway_info["breaker_max"] = max((s.get("breaker", 0.0) for s in samples), default=0)
        gateway_info["alive"] = gateway.alive()
        gateway.stop()
        gateway_info["log"] = log_problems(gateway)
    return finish_run(
        args,
        origin,
        idle,
        (kind, mode, concurrency),
        (flood, drained, drain_end, samples),
        reads,
        gateway=gateway_info,
        cpu=cpu,
        others=others,
    )


def finish_run(
    args: argparse.Namespace,
    origin: str,
    idle: Idle,
    what: tuple[str, str, int | None],
    result: tuple[Flood, bool, float, list[dict[str, float]]],
    reads: Reads,
    *,
    gateway: dict[str, Any],
    cpu: dict[str, float],
    others: float,
) -> Run:
    """The figures of one run (`what`: kind, mode, concurrency; `result`: what `flood_run`
    returned), from the origin's account of what it applied."""
    kind, mode, concurrency = what
    flood, drained, drain_end, samples = result
    capacity = args.workers / args.service
    stats = origin_stats(origin, "ids=1")
    applied_ids = set(stats["applied_ids"])
    sent = {str(i) for i in flood.sent_at}
    acked = {str(i) for i in flood.acked}
    applied = sent & applied_ids
    last_applied = stats["last_applied_at"]
    drain_s = None if last_applied is None else last_applied - flood.first
    ideal = args.n / capacity
    window = reads.between(flood.first, drain_end)
    p50 = window.percentile(50, args.timeout)
    p99 = window.percentile(99, args.timeout)
    send_s = max(flood.last_sent - flood.first, 1e-9)
    run = Run(
        kind=kind,
        mode=mode,
        concurrency=concurrency,
        n=args.n,
        capacity=capacity,
        offered_rate=round(len(flood.sent_at) / send_s, 1),
        send_s=round(send_s, 3),
        acked=len(acked),
        failed=len(flood.failed),
        lost=len(sent - applied),
        lost_acked=len(acked - applied),
        unknown=len(applied - acked),
        duplicates=int(stats["duplicates_applied"]),
        applied=len(applied),
        drained=drained and not (sent - applied),
        drain_s=None if drain_s is None else round(drain_s, 3),
        drain_ratio=None if drain_s is None else round(drain_s / ideal, 3),
        reads=len(window.latency),
        read_errors=window.errors,
        read_p50_ms=_ms(p50),
        read_p99_ms=_ms(p99),
        read_p50_ratio=_round(_ratio(_ms(p50), idle.p50_ms)),
        read_p99_ratio=_round(_ratio(_ms(p99), idle.p99_ms)),
        origin_max_inflight=int(stats["max_inflight"]),
        origin_503=int(stats["failed_503"]),
        repeats_ignored=int(stats["repeats_ignored"]),
        busy_share=busy_share(stats, flood.first, last_applied, args.workers),
        busy_share_after=busy_share(stats, flood.last_sent, last_applied, args.workers),
        rate_after=rate_after(stats, flood.last_sent, last_applied, capacity),
        gateway=gateway,
        cpu_percent=cpu,
        others_cores=others,
        samples=samples,
        origin_series=stats.get("series", []),
        flood_start=flood.first,
        flood_end=flood.last_answer,
        drain_end=drain_end,
    )
    progress(f"    {one_line(run)}")
    return run


def busy_share(
    stats: dict[str, Any], start: float, end: float | None, workers: int
) -> float | None:
    """How busy the origin's capacity was between `start` and `end`, from its 50 ms samples:
    the mean of min(working, W) / W (1.0: every worker busy all the time)."""
    if end is None:
        return None
    busy = [min(p[2], workers) / workers for p in stats.get("series", []) if start <= p[0] <= end]
    return round(sum(busy) / len(busy), 3) if busy else None


def rate_after(
    stats: dict[str, Any], start: float, end: float | None, capacity: float
) -> float | None:
    """Writes applied per second between `start` and `end`, over the capacity C."""
    points = [p for p in stats.get("series", []) if start <= p[0] <= (end or 0.0)]
    if end is None or len(points) < 2 or points[-1][0] - points[0][0] < 0.5:
        return None
    rate = float(points[-1][3] - points[0][3]) / float(points[-1][0] - points[0][0])
    return round(rate / capacity, 3)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def start_gateway(
    services: Services,
    args: argparse.Namespace,
    kind: str,
    mode: str,
    origin: str,
    concurrency: int | None,
    store: str | None = None,
) -> tuple[Service, str, tuple[str, str]]:
    """A fresh gateway on its own SQLite database, or on `store` (a URL several may share)."""
    name = f"forebay-{kind}-{mode.replace(' ', '')}-{secrets.token_hex(2)}"
    directory = services.subdir(name)
    token = secrets.token_urlsafe(18)
    config = directory / "forebay.yaml"
    config.write_text(
        GATEWAY_CONFIG.format(
            governor="true" if mode == "forebay" else "false",
            concurrency=concurrency or 16,
            token=token,
        )
    )
    port, admin_port = free_port(), free_port()
    service = start_forebay_run(
        services,
        name,
        [
            *("--config", str(config), "--origin", origin),
            *("--store", store or f"sqlite:///{directory / 'forebay.db'}"),
            *("--listen", f"{LOOPBACK}:{port}", "--admin-listen", f"{LOOPBACK}:{admin_port}"),
        ],
        admin_port=admin_port,
        env=clean_env(),
    )
    target = f"http://{LOOPBACK}:{port}"
    service.wait_ready(http_ready(f"{target}/items/0"), timeout=10.0)
    return service, target, (f"http://{LOOPBACK}:{admin_port}", token)


def measure_idle(args: argparse.Namespace, origin: str) -> Idle:
    settle(origin)
    reader = Reader(origin, IDLE_RATE, IDLE_READS, args.timeout)
    reads = reader.finish(stop=False)
    p50 = reads.percentile(50, args.timeout)
    p99 = reads.percentile(99, args.timeout)
    if p50 is None or p99 is None or reads.errors:
        raise BenchError(f"idle reads failed: {reads.errors} of {len(reads.latency)}")
    idle = Idle(round(p50 * 1000, 3), round(p99 * 1000, 3), len(reads.latency), reads.errors)
    progress(f"    idle origin: read p50 {idle.p50_ms:.2f} ms, p99 {idle.p99_ms:.2f} ms")
    return idle


def one_line(run: Run) -> str:
    drain = "-" if run.drain_ratio is None else f"{run.drain_ratio:.2f}"
    p99 = "-" if run.read_p99_ratio is None else f"{run.read_p99_ratio:.2f}"
    return (
        f"{run.mode:<10} offered {run.offered_rate:>6.0f}/s  failed {run.failed:>4}  "
        f"lost {run.lost:>4}  dup {run.duplicates}  drain {drain}x  read p99 {p99}x"
        f"  cpu% {run.cpu_percent}" + ("" if run.drained else "  (NOT DRAINED)")
    )


# --- the whole benchmark -----------------------------------------------------------------------


def start_origin(
    args: argparse.Namespace, services: Services, kind: str, round_no: int
) -> tuple[str, Service]:
    """The simulated origin of `kind` (`bench/origin_sim.py`), ready; its URL and process."""
    port = free_port()
    origin = f"http://{LOOPBACK}:{port}"
    service = services.start(
        f"origin-{kind}-{round_no}",
        [
            sys.executable,
            "-m",
            "bench.origin_sim",
            "--port",
            str(port),
            "--kind",
            kind,
            "--workers",
            str(args.workers),
            "--service",
            str(args.service),
            "--jitter",
            str(args.jitter),
        ],
        ready=http_ready(f"{origin}/healthz"),
    )
    return origin, service


def measure_kind(
    args: argparse.Namespace, services: Services, kind: str, round_no: int
) -> tuple[Idle, list[Run]]:
    origin, service = start_origin(args, services, kind, round_no)
    try:
        idle = measure_idle(args, origin)
        runs: list[Run] = []
        # The gateway runs first: their offered rate is the one `direct` is sent at.
        for mode, concurrency in modes(args):
            if mode == "direct":
                continue
            progress(f"  {kind}: {mode}")
            runs.append(
                measure_run(args, services, kind, mode, origin, service, idle, None, concurrency)
            )
        rate = args.rate or median([r.offered_rate for r in runs])
        progress(f"  {kind}: direct at {rate:.0f} writes/s")
        runs.insert(0, measure_run(args, services, kind, "direct", origin, service, idle, rate))
    finally:
        service.stop()
    return idle, runs


# --- main --------------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description="A flood of writes against an origin of known capacity: direct, fixed"
        " concurrency, forebay's governor.",
    )
    parser.add_argument("--n", type=int, default=3000, help="writes per run (3000)")
    parser.add_argument("--workers", type=int, default=16, help="W, the origin's workers (16)")
    parser.add_argument("--service", type=float, default=0.05, help="S, seconds (0.05)")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="origin's service time spread, +-share of S (0)"
    )
    parser.add_argument("--kinds", default="pool,degrading", help="origin kinds (pool,degrading)")
    parser.add_argument(
        "--fixed", default="0.5,1,4,16", help="fixed concurrencies, as multiples of W"
    )
    parser.add_argument("--runs", type=int, default=1, help="rounds; medians when more (1)")
    parser.add_argument("--clients", type=int, default=32, help="client tasks, gateway runs (32)")
    parser.add_argument(
        "--rate", type=float, default=None, help="writes/s for direct (the gateway runs')"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="client timeout, s (2)")
    parser.add_argument("--read-rate", type=float, default=20.0, help="live reads/s (20)")
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds a drain may take (60)"
    )
    add_json_option(parser)
    parser.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="plot the forebay runs to docs/img/flood-KIND.png (needs matplotlib)",
    )
    args = parser.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    try:
        args.fixed = _floats(args.fixed)
    except ValueError:
        parser.error("--fixed takes numbers separated by commas, e.g. 0.5,1,4,16")
    if not args.kinds or any(k not in KINDS for k in args.kinds):
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    if (
        args.n < 1
        or args.workers < 1
        or args.service <= 0
        or args.runs < 1
        or args.clients < 1
        or args.timeout <= 0
        or args.read_rate <= 0
        or args.drain_timeout <= 0
        or (args.rate is not None and args.rate <= 0)
        or any(m <= 0 for m in args.fixed)
    ):
        parser.error("counts must be >= 1, times and rates > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    info = scenario_info("bench.flood", argv)
    idles: dict[str, list[Idle]] = {k: [] for k in args.kinds}
    rounds: dict[str, list[list[Run]]] = {k: [] for k in args.kinds}
    started = time.monotonic()

    def body() -> None:
        with Services(prefix="forebay-bench-flood-") as services:
            for i in range(args.runs):
                for kind in args.kinds:
                    progress(f"round {i + 1}/{args.runs}: {kind} origin")
                    idle, runs = measure_kind(args, services, kind, i)
                    idles[kind].append(idle)
                    rounds[kind].append(runs)

    status = run_guarded(body)
    if status is not None:
        return status
    progress(f"done in {time.monotonic() - started:.0f} s")
    summary = summarize(args, idles, rounds)
    plots: list[str] = []
    if args.plot:
        for kind in args.kinds:
            forebay = [r for r in rounds[kind][-1] if r.mode == "forebay"]
            if forebay:
                path = plot(args, kind, forebay[0])
                if path:
                    plots.append(path)
    print(render(args, summary, info, plots))
    if args.json:
        doc = {
            "scenario": "flood",
            "n": args.n,
            "workers": args.workers,
            "service_s": args.service,
            "runs": args.runs,
            "clients": args.clients,
            "timeout_s": args.timeout,
            "read_rate": args.read_rate,
            "machine": info,
            "kinds": summary,
            "idle": {k: [asdict(i) for i in v] for k, v in idles.items()},
            "plots": plots,
        }
        print_json(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
