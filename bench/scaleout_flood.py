"""bench.scaleout's flood part: bench.flood's `forebay` run (governor on, nothing tuned)
through one gateway and through two gateways on the same Redis, against the same origin.

With two, the writes are split between the gateways (client task k writes through gateway
k mod 2) and so are the live reads (one read stream per gateway, each at half the rate).
See `bench/scaleout.py` for the scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from typing import Any

from bench.accept_setup import redis_cli
from bench.common import LOOPBACK, Service, Services, cpu_snapshot, median, others_cores
from bench.flood import finish_run, measure_idle, start_gateway, start_origin
from bench.flood_client import (
    Flood,
    Reader,
    Reads,
    closed_loop,
    drain,
    log_problems,
    origin_reset,
    sample_metrics,
    settle,
)
from bench.flood_report import READ_LEAD, Idle, Run
from bench.report import progress

MODE = "forebay"  # bench.flood's mode: the governor on, defaults


def mode_name(instances: int) -> str:
    return f"{instances} instance" + ("s" if instances > 1 else "")


async def flood_through(
    args: argparse.Namespace,
    targets: list[str],
    origin: str,
    admins: list[tuple[str, str]],
    tag: str,
) -> tuple[tuple[Flood, bool, float, list[dict[str, float]]], list[list[dict[str, float]]]]:
    """bench.flood's `flood_run` for several gateways: the writes split between `targets`,
    /metrics sampled on every instance. Returns what `flood_run` does (with the first
    instance's samples) and every instance's samples."""
    samples: list[list[dict[str, float]]] = [[] for _ in admins]
    stop = asyncio.Event()
    samplers = [
        asyncio.create_task(sample_metrics(url, token, into, stop))
        for (url, token), into in zip(admins, samples, strict=True)
    ]
    try:
        flood = await closed_loop(targets, args.n, args.clients, args.timeout, tag)
        deadline = flood.first + args.drain_timeout
        # The queue depth is the store's, the same on every instance: the first one's tells
        # the drain whether anything is still waiting.
        drained = await drain(origin, flood.acked, deadline, samples[0])
        drain_end = time.monotonic()
        await asyncio.sleep(0.3)  # a last few samples after the drain
    finally:
        stop.set()
        for sampler in samplers:
            with contextlib.suppress(Exception):
                await sampler
    return (flood, drained, drain_end, samples[0]), samples


def gateway_summary(
    gateways: list[Service], samples: list[list[dict[str, float]]]
) -> dict[str, Any]:
    """Deliveries (all instances), each instance's governor limit, whether all lived, logs."""
    info: dict[str, Any] = {"delivered": {}, "limit_median": [], "limit_max": []}
    for series in samples:
        if not series:
            continue
        for key, value in series[-1].items():
            if key.startswith("delivered_"):
                outcome = key.removeprefix("delivered_")
                info["delivered"][outcome] = info["delivered"].get(outcome, 0) + int(value)
        limits = [s["limit"] for s in series if "limit" in s]
        if limits:
            info["limit_median"].append(round(median(limits), 1))
            info["limit_max"].append(round(max(limits), 1))
    info["breaker_max"] = max((s.get("breaker", 0.0) for x in samples for s in x), default=0.0)
    info["alive"] = all(g.alive() for g in gateways)
    for gateway in gateways:
        gateway.stop()
    logs = [log_problems(g) for g in gateways]
    info["log"] = {
        "count": sum(x["count"] for x in logs),
        "first": [line for x in logs for line in x["first"]][:8],
    }
    return info


def measure_shared(
    args: argparse.Namespace,
    services: Services,
    kind: str,
    instances: int,
    origin: tuple[str, Service],
    redis: tuple[int, Service],
    idle: Idle,
) -> Run:
    """One flood through `instances` gateways on the Redis `redis` (port, process)."""
    base, origin_service = origin
    redis_port, redis_service = redis
    settle(base)
    origin_reset(base)
    tag = secrets.token_hex(4)
    store = f"redis://{LOOPBACK}:{redis_port}/0?prefix=flood-{tag}:"
    started = [
        start_gateway(services, args, kind, MODE, base, None, store=store) for _ in range(instances)
    ]
    gateways = [g for g, _, _ in started]
    targets = [t for _, t, _ in started]
    admins = [a for _, _, a in started]
    watched = [*gateways, origin_service, redis_service]
    cpu0 = {s.name: s.cpu_seconds() for s in watched}
    snap0, t0 = cpu_snapshot(watched), time.monotonic()
    rate = args.read_rate / instances
    reads_max = int(rate * (READ_LEAD + args.drain_timeout + 30))
    readers = [Reader(t, rate, reads_max, args.timeout) for t in targets]
    reads = Reads()
    try:
        time.sleep(READ_LEAD)  # live traffic is there before the flood
        result, samples = asyncio.run(flood_through(args, targets, base, admins, tag))
    finally:
        for reader in readers:
            with contextlib.suppress(Exception):
                part = reader.finish()
                reads.sent_at += part.sent_at
                reads.latency += part.latency
            reader.close()
    elapsed = time.monotonic() - t0
    cpu: dict[str, float] = {}
    for service in watched:
        if service.alive():
            key = service.name.split("-")[0]  # forebay, origin, redis
            used = 100.0 * (service.cpu_seconds() - cpu0[service.name]) / elapsed
            cpu[key] = round(cpu.get(key, 0.0) + used, 1)
    others = round(others_cores(snap0, cpu_snapshot(watched)), 2)
    info = gateway_summary(gateways, samples)
    run = finish_run(
        args,
        base,
        idle,
        (kind, mode_name(instances), None),
        result,
        reads,
        gateway=info,
        cpu=cpu,
        others=others,
    )
    redis_cli(redis_port, "FLUSHDB")  # the gateways are stopped; runs do not add up
    return run


def measure_kind(
    args: argparse.Namespace,
    services: Services,
    kind: str,
    round_no: int,
    redis: tuple[int, Service],
) -> tuple[Idle, list[Run]]:
    """The idle origin, then the flood through one and through two instances (in turns)."""
    origin = start_origin(args, services, kind, round_no)
    try:
        idle = measure_idle(args, origin[0])
        order = (1, 2) if round_no % 2 == 0 else (2, 1)
        runs: list[Run] = []
        for instances in order:
            progress(f"  {kind}: {mode_name(instances)} on one Redis")
            runs.append(measure_shared(args, services, kind, instances, origin, redis, idle))
    finally:
        origin[1].stop()
    return idle, sorted(runs, key=lambda r: r.mode)
