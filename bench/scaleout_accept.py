"""bench.scaleout's accept part: one forebay on SQLite, one on Redis, two on the same Redis.

See `bench/scaleout.py` for the scenario. The accept path is bench.accept's (`forebay
accept only`: `POST /orders` managed and async, the origin a closed port); only the store
and the number of instances change.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.accept_setup import (
    LOAD_CPU,
    SERVER_CPU,
    Instance,
    check_answer,
    forebay_counts,
    ok_count,
    redis_cli,
    start_forebay,
)
from bench.common import (
    LOOPBACK,
    BenchError,
    Service,
    Services,
    WrkResult,
    cpu_snapshot,
    others_cores,
    run_wrk,
)
from bench.report import pct, progress

TARGETS = ("sqlite-1", "redis-1", "redis-2")
LABELS = {
    "sqlite-1": "1 instance, SQLite",
    "redis-1": "1 instance, Redis",
    "redis-2": "2 instances, Redis",
}
# The first instance has CPU 0 to itself, as in bench.accept; a second one can only go on
# CPU 1, which it shares with wrk and redis-server.
INSTANCE_CPUS = (SERVER_CPU, LOAD_CPU)
CHECK_TARGET = "forebay-accept"  # bench.accept's name for this variant, for check_answer


def children_cpu_seconds() -> float:
    """CPU time of our reaped children: the wrk processes, once each run is over."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def log_events(service: Service) -> dict[str, int]:
    """How many times a gateway logged each warning or error ("level: event"): under load
    the same few events repeat thousands of times with different ids."""
    counts: dict[str, int] = {}
    try:
        lines = service.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return counts
    for line in lines:
        doc: object = None
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
        if isinstance(doc, dict) and doc.get("level") in ("warning", "error", "critical"):
            key = f"{doc['level']}: {doc.get('event', '')}"
            if "error" in doc:
                key += f" ({doc['error']})"
            counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass
class Round:
    rps: float  # all wrk processes together
    p50_ms: float  # the worse of the wrk processes'
    p99_ms: float
    gateway_cores: float  # CPU used by the gateway processes together (1.0 = one core)
    redis_cores: float
    wrk_cores: float
    others_cores: float  # CPU used by processes not ours meanwhile
    acked: int  # 2xx answers counted (check, warm-up and measurement)
    stored: int | None  # requests the store held afterwards
    problems: list[str] = field(default_factory=list)

    @property
    def per_gateway_core(self) -> float:
        return self.rps / self.gateway_cores if self.gateway_cores > 0 else 0.0

    @property
    def per_busy_core(self) -> float:
        """Requests/s per core used by everything we ran (gateways, Redis and wrk)."""
        used = self.gateway_cores + self.redis_cores + self.wrk_cores
        return self.rps / used if used > 0 else 0.0


@dataclass
class Target:
    name: str
    rounds: list[Round] = field(default_factory=list)
    discarded: list[Round] = field(default_factory=list)  # measured while the machine was busy


class AcceptBench:
    def __init__(
        self,
        args: argparse.Namespace,
        services: Services,
        script: Path,
        redis: Service,
        redis_port: int,
        closed_origin: str,
    ) -> None:
        self.args = args
        self.services = services
        self.script = script
        self.redis = redis
        self.redis_port = redis_port
        self.closed_origin = closed_origin
        self.targets = {name: Target(name) for name in TARGETS}
        # instance name -> how many times it logged each warning or error
        self.logs: dict[str, dict[str, int]] = {}

    def store_url(self, prefix: str) -> str:
        return f"redis://{LOOPBACK}:{self.redis_port}/0?prefix={prefix}"

    def wrk_all(self, urls: list[str], duration: float) -> list[WrkResult]:
        """One wrk per instance, at the same time, the connections split between them."""
        connections = max(1, self.args.connections // len(urls))

        def one(url: str) -> WrkResult:
            return run_wrk(
                url,
                connections=connections,
                duration=duration,
                latency=True,
                cpu=LOAD_CPU,
                script=self.script,
            )

        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            return list(pool.map(one, urls))

    def start(self, name: str, tag: str) -> tuple[list[Instance], str | None]:
        """The instances of target `name`, checked and warmed up; the Redis prefix if any."""
        count = int(name.rsplit("-", 1)[1])
        prefix = f"{tag}-{name}:" if name.startswith("redis") else None
        store = self.store_url(prefix) if prefix is not None else None
        instances = [
            start_forebay(
                self.services,
                f"{name}-{tag}-{k + 1}",
                self.closed_origin,
                store=store,
                cpu=INSTANCE_CPUS[k],
            )
            for k in range(count)
        ]
        for instance in instances:
            check_answer(CHECK_TARGET, instance.url, instance.service)
            instance.acked += 1
        if self.args.warmup > 0:
            progress(f"  warm-up {LABELS[name]} ({self.args.warmup}s, fresh processes)")
            results = self.wrk_all([i.url for i in instances], self.args.warmup)
            for instance, result in zip(instances, results, strict=True):
                instance.acked += ok_count(result)
        return instances, prefix

    def measure_one(self, name: str, tag: str) -> Round:
        instances, prefix = self.start(name, tag)
        gateways = [i.service for i in instances]
        watched = [*gateways, self.redis]
        before = cpu_snapshot(watched)
        gw0 = sum(s.cpu_seconds() for s in gateways)
        redis0, wrk0 = self.redis.cpu_seconds(), children_cpu_seconds()
        started = time.monotonic()
        results = self.wrk_all([i.url for i in instances], self.args.duration)
        elapsed = time.monotonic() - started
        for service in gateways:
            if not service.alive():
                raise BenchError(
                    f"{service.name} exited during its run\n"
                    f"--- {service.name} log (tail) ---\n{service.log_tail()}"
                )
        gateway_cores = (sum(s.cpu_seconds() for s in gateways) - gw0) / elapsed
        redis_cores = (self.redis.cpu_seconds() - redis0) / elapsed
        wrk_cores = (children_cpu_seconds() - wrk0) / elapsed
        others = others_cores(before, cpu_snapshot(watched))
        for instance, result in zip(instances, results, strict=True):
            instance.acked += ok_count(result)
        stored = self.finish(instances, prefix)
        problems = [f"{LABELS[name]} ({tag}): {p}" for r in results for p in r.problems()]
        for problem in problems:
            progress(f"  WARNING {problem}")
        run = Round(
            rps=round(sum(r.requests_per_sec for r in results), 1),
            p50_ms=max(pct(r, "50") for r in results),
            p99_ms=max(pct(r, "99") for r in results),
            gateway_cores=round(gateway_cores, 3),
            redis_cores=round(redis_cores, 3),
            wrk_cores=round(wrk_cores, 3),
            others_cores=round(others, 2),
            acked=sum(i.acked for i in instances),
            stored=stored,
            problems=problems,
        )
        progress(
            f"    {run.rps:.0f} req/s, p99 {run.p99_ms:.1f} ms, gateways {run.gateway_cores:.2f}"
            f" cores, redis {run.redis_cores:.2f}, wrk {run.wrk_cores:.2f},"
            f" others {run.others_cores:.2f}"
        )
        return run

    def finish(self, instances: list[Instance], prefix: str | None) -> int | None:
        """Stop the instances, keep their logs, and count what their store holds."""
        for instance in instances:
            instance.service.stop()
            found = log_events(instance.service)
            if found:
                self.logs[instance.service.name] = found
        if prefix is None:
            return sum(sum(forebay_counts(i.db).values()) for i in instances)
        # Every request is in the sorted set `all` until the sweep removes finished ones;
        # with the origin a closed port, none finishes.
        count = redis_cli(self.redis_port, "ZCARD", f"{prefix}all")
        # Nothing else uses this private server: empty it so that runs do not add up in
        # its memory.
        redis_cli(self.redis_port, "FLUSHDB")
        return int(count) if count.isdigit() else None

    def run(self, retries: int, busy_cores: float, pause: float) -> None:
        for i in range(self.args.runs):
            shift = i % len(TARGETS)
            for name in TARGETS[shift:] + TARGETS[:shift]:
                progress(f"accept round {i + 1}/{self.args.runs}: {LABELS[name]}")
                target = self.targets[name]
                for attempt in range(retries + 1):
                    tag = f"r{i + 1}" + (f"-{attempt + 1}" if attempt else "")
                    run = self.measure_one(name, tag)
                    if run.others_cores < busy_cores or attempt == retries:
                        break
                    target.discarded.append(run)
                    progress(
                        f"  busy: other processes used {run.others_cores:.2f} cores;"
                        f" measuring again in {pause:g}s"
                    )
                    time.sleep(pause)
                target.rounds.append(run)
