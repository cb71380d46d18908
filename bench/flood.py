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
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    LOOPBACK,
    BenchError,
    Service,
    Services,
    bench_command,
    cpu_snapshot,
    exit_on_sigterm,
    free_port,
    http_ready,
    machine_info,
    median,
    others_cores,
    wait_until,
)

KINDS = ("pool", "degrading")
IMG_DIR = Path(__file__).resolve().parent.parent / "docs" / "img"

# Targets.
TARGET_DRAIN = 1.10  # drain time over N / C
TARGET_READ_P99 = 2.0  # live-read p99 over the idle origin's

IDLE_READS = 200  # reads measured on the idle origin, at IDLE_RATE per second
IDLE_RATE = 100.0
READ_LEAD = 1.0  # seconds of live reads before the flood starts
SAMPLE_EVERY = 0.1  # seconds between /metrics samples
POLL_EVERY = 0.1  # seconds between looks at the origin's progress during the drain
STALL = 10.0  # seconds without progress (and an empty gateway queue) that end a drain
SETTLE_TIMEOUT = 60.0  # seconds to wait for the origin to empty between runs
BUSY_CORES = 0.15  # CPU used by other processes during a run (cores) above which it is suspect

GATEWAY_CONFIG = """\
endpoints:
  "POST /orders/{{id}}": {{managed: true, async: true}}
governor: {{enabled: {governor}}}
async: {{concurrency: {concurrency}}}
log: {{level: warning}}
admin: {{token: "{token}"}}
"""

METRICS = {
    "limit": "forebay_governor_limit",
    "inflight": "forebay_origin_inflight",
    "queue": "forebay_queue_depth",
    "accepted": "forebay_accepted_total",
    "min_rtt": "forebay_origin_min_rtt_seconds",
    "breaker": "forebay_breaker_state",
}
DELIVERED = re.compile(r'^forebay_delivered_total\{outcome="(\w+)"\} (\S+)$', re.M)


# --- results -----------------------------------------------------------------------------------


@dataclass
class Reads:
    """Live-read latencies (seconds; None for a failed read), with when each was sent."""

    sent_at: list[float] = field(default_factory=list)
    latency: list[float | None] = field(default_factory=list)

    def between(self, start: float, end: float) -> Reads:
        out = Reads()
        for at, lat in zip(self.sent_at, self.latency, strict=True):
            if start <= at <= end:
                out.sent_at.append(at)
                out.latency.append(lat)
        return out

    def percentile(self, pct: float, failed_as: float) -> float | None:
        values = sorted(failed_as if v is None else v for v in self.latency)
        if not values:
            return None
        rank = max(1, math.ceil(pct / 100.0 * len(values)))
        return values[rank - 1]

    @property
    def errors(self) -> int:
        return sum(1 for v in self.latency if v is None)


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


# --- the live-read stream, in its own process --------------------------------------------------


async def _read_stream(
    base: str,
    rate: float,
    count: int,
    wait_s: float,
    conn: multiprocessing.connection.Connection,
    stop: Any,
) -> Reads:
    reads = Reads()
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(i: int) -> None:
            sent = time.monotonic()
            t0 = time.perf_counter()
            latency: float | None = None
            try:
                async with session.get(f"{base}/items/{i}") as resp:
                    await resp.read()
                    if resp.status == 200:
                        latency = time.perf_counter() - t0
            except (aiohttp.ClientError, TimeoutError, OSError):
                latency = None
            reads.sent_at.append(sent)
            reads.latency.append(latency)

        conn.send("ready")
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop.is_set():
                break
            tasks.append(asyncio.create_task(one(i)))
        if tasks:
            await asyncio.wait(tasks, timeout=wait_s + 5.0)
    return reads


def _reader_main(
    base: str,
    rate: float,
    count: int,
    timeout: float,
    conn: multiprocessing.connection.Connection,
    stop: Any,
) -> None:
    reads = asyncio.run(_read_stream(base, rate, count, timeout, conn, stop))
    conn.send((reads.sent_at, reads.latency))
    conn.close()


class Reader:
    """Live reads at a steady rate from a separate process, so the flood's client work does
    not delay them (or their timing)."""

    def __init__(self, base: str, rate: float, count: int, timeout: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop_event = ctx.Event()
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_reader_main,
            args=(base, rate, count, timeout, child, self.stop_event),
            daemon=True,
        )
        self.proc.start()
        child.close()
        if not self.conn.poll(30.0) or self.conn.recv() != "ready":
            self.close()
            raise BenchError("the live-read process did not start")
        self.expected = count / rate + timeout + 10.0

    def finish(self, stop: bool = True) -> Reads:
        """Stop sending (or, with `stop` false, let it send all its reads); the results."""
        if stop:
            self.stop_event.set()
        try:
            if not self.conn.poll(self.expected):
                raise BenchError("the live-read process did not report")
            sent_at, latency = self.conn.recv()
        except EOFError:
            raise BenchError("the live-read process died") from None
        finally:
            self.close()
        return Reads(list(sent_at), list(latency))

    def close(self) -> None:
        self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5.0)
        self.conn.close()


# --- helpers -----------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ratio(value: float | None, base: float) -> float | None:
    return None if value is None or base <= 0 else value / base


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 3)


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, name in METRICS.items():
        match = re.search(rf"^{name} (\S+)$", text, re.M)
        if match:
            out[key] = float(match.group(1))
    for outcome, value in DELIVERED.findall(text):
        out[f"delivered_{outcome}"] = float(value)
    return out


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        if resp.status != 200:
            raise BenchError(f"GET {url}: {resp.status}")
        return await resp.json()


def origin_stats(base: str, query: str = "series=0") -> dict[str, Any]:
    async def get() -> Any:
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await _get_json(session, f"{base}/stats?{query}")

    result: dict[str, Any] = asyncio.run(get())
    return result


def origin_reset(base: str) -> None:
    async def post() -> None:
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            resp = await session.post(f"{base}/reset")
            resp.release()
            if resp.status != 200:
                raise BenchError(f"POST {base}/reset: {resp.status}")

    asyncio.run(post())


def settle(base: str) -> None:
    """Wait until nothing is inside the origin (a previous run's requests finished)."""
    wait_until(
        lambda: origin_stats(base)["inflight"] == 0,
        SETTLE_TIMEOUT,
        "the origin to empty",
        interval=0.1,
    )


def log_problems(service: Service, limit: int = 8) -> dict[str, Any]:
    """Warnings and errors in a gateway's log: how many, and the first few (deduplicated)."""
    try:
        lines = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return {"count": 0, "first": []}
    found: list[str] = []
    count = 0
    for line in lines:
        text = line.strip()
        if not text:
            continue
        level = ""
        with contextlib.suppress(ValueError):
            doc = json.loads(text)
            if isinstance(doc, dict):
                level = str(doc.get("level", ""))
                text = f"{level}: {doc.get('event', '')} " + ", ".join(
                    f"{k}={v}"
                    for k, v in doc.items()
                    if k not in ("level", "event", "timestamp", "logger")
                )
        if level in ("warning", "error", "critical") or re.search(
            r"\b(error|exception|traceback|warning)\b", text, re.I
        ):
            count += 1
            short = text[:300]
            if short not in found and len(found) < limit:
                found.append(short)
    return {"count": count, "first": found}


# --- one measured run --------------------------------------------------------------------------


@dataclass
class Flood:
    sent_at: dict[int, float] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    first: float = 0.0
    last_sent: float = 0.0
    last_answer: float = 0.0


async def _write(
    session: aiohttp.ClientSession, base: str, tag: str, i: int, flood: Flood, ok: int
) -> None:
    body = json.dumps({"id": str(i), "item": "widget", "qty": 1}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"flood-{tag}-{i}"}
    flood.sent_at[i] = flood.last_sent = time.monotonic()
    try:
        async with session.post(f"{base}/orders/{i}", data=body, headers=headers) as resp:
            await resp.read()
            if resp.status == ok:
                flood.acked.add(i)
            else:
                flood.failed.add(i)
    except (aiohttp.ClientError, TimeoutError, OSError):
        flood.failed.add(i)
    flood.last_answer = max(flood.last_answer, time.monotonic())


async def closed_loop(base: str, n: int, clients: int, wait_s: float, tag: str) -> Flood:
    """`clients` tasks, each sending its next write when the previous one is answered."""
    flood = Flood()
    connector = aiohttp.TCPConnector(limit=clients)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def client() -> None:
            for i in counter:  # shared: bounded by n in all
                await _write(session, base, tag, i, flood, 202)

        flood.first = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
    return flood


async def open_loop(base: str, n: int, rate: float, wait_s: float, tag: str) -> Flood:
    """Each write its own request, sent on a fixed schedule whatever happened to the others."""
    flood = Flood()
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=wait_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        tasks: list[asyncio.Task[None]] = []
        flood.first = start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_write(session, base, tag, i, flood, 201)))
        await asyncio.wait(tasks, timeout=wait_s + 10.0)
        for task in tasks:
            task.cancel()
    for i in range(n):
        if i not in flood.acked:
            flood.failed.add(i)
    return flood


async def sample_metrics(
    admin: str, token: str, samples: list[dict[str, float]], stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while not stop.is_set():  # bounded: the run sets `stop` when its drain ends
            at = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with session.get(f"{admin}/metrics") as resp:
                    if resp.status == 200:
                        sample = parse_metrics(await resp.text())
                        sample["t"] = at
                        samples.append(sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at + SAMPLE_EVERY - time.monotonic()))


async def drain(
    origin: str,
    acked: set[int],
    deadline: float,
    samples: list[dict[str, float]] | None,
) -> bool:
    """Wait until every acknowledged write is applied and no write is inside the origin,
    progress stalls (gateway runs: with the gateway's queue empty; direct: with no write
    inside the origin), or `deadline`. True when every acknowledged write was applied."""
    want = {str(i) for i in acked}
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        last_applied, last_progress = -1, time.monotonic()
        while time.monotonic() < deadline:
            stats = await _get_json(session, f"{origin}/stats?series=0")
            applied, inside = int(stats["applied"]), int(stats["writes_inflight"])
            now = time.monotonic()
            if applied != last_applied:
                last_applied, last_progress = applied, now
            if applied >= len(want) and inside == 0:
                doc = await _get_json(session, f"{origin}/stats?series=0&ids=1")
                if want <= set(doc["applied_ids"]):
                    return True
            if samples is None:  # direct: nothing more will come once no write is inside
                if inside == 0 and now - last_progress > 1.0:
                    return False
            elif now - last_progress > STALL and samples and samples[-1].get("queue", 1) == 0:
                return False
            await asyncio.sleep(POLL_EVERY)
    return False


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
    capacity = args.workers / args.service
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
        gateway=gateway_info,
        cpu_percent=cpu,
        others_cores=others,
        samples=samples,
        origin_series=stats.get("series", []),
        flood_start=flood.first,
        flood_end=flood.last_answer,
        drain_end=drain_end,
    )
    _progress(f"    {one_line(run)}")
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
) -> tuple[Service, str, tuple[str, str]]:
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREBAY_")}
    service = services.start(
        name,
        [
            sys.executable,
            "-m",
            "forebay",
            "run",
            "--config",
            str(config),
            "--origin",
            origin,
            "--store",
            f"sqlite:///{directory / 'forebay.db'}",
            "--listen",
            f"{LOOPBACK}:{port}",
            "--admin-listen",
            f"{LOOPBACK}:{admin_port}",
        ],
        env=env,
        ready=http_ready(f"http://{LOOPBACK}:{admin_port}/healthz"),
        timeout=30.0,
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
    _progress(f"    idle origin: read p50 {idle.p50_ms:.2f} ms, p99 {idle.p99_ms:.2f} ms")
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


def modes(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    fixed = [(f"fixed x{m:g}", max(1, round(m * args.workers))) for m in args.fixed]
    return [("direct", None), *fixed, ("forebay", None)]


def measure_kind(
    args: argparse.Namespace, services: Services, kind: str, round_no: int
) -> tuple[Idle, list[Run]]:
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
        ],
        ready=http_ready(f"{origin}/healthz"),
    )
    try:
        idle = measure_idle(args, origin)
        runs: list[Run] = []
        # The gateway runs first: their offered rate is the one `direct` is sent at.
        for mode, concurrency in modes(args):
            if mode == "direct":
                continue
            _progress(f"  {kind}: {mode}")
            runs.append(
                measure_run(args, services, kind, mode, origin, service, idle, None, concurrency)
            )
        rate = args.rate or median([r.offered_rate for r in runs])
        _progress(f"  {kind}: direct at {rate:.0f} writes/s")
        runs.insert(0, measure_run(args, services, kind, "direct", origin, service, idle, rate))
    finally:
        service.stop()
    return idle, runs


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
        f"python:   {info['implementation']} {info['python']} ({info['interpreter']})",
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
        _progress(
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
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
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
    info = machine_info()
    info["command"] = bench_command("bench.flood", sys.argv[1:] if argv is None else argv)
    idles: dict[str, list[Idle]] = {k: [] for k in args.kinds}
    rounds: dict[str, list[list[Run]]] = {k: [] for k in args.kinds}
    started = time.monotonic()
    try:
        with Services(prefix="forebay-bench-flood-") as services:
            for i in range(args.runs):
                for kind in args.kinds:
                    _progress(f"round {i + 1}/{args.runs}: {kind} origin")
                    idle, runs = measure_kind(args, services, kind, i)
                    idles[kind].append(idle)
                    rounds[kind].append(runs)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    _progress(f"done in {time.monotonic() - started:.0f} s")
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
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
