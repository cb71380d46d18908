"""`/api/stats`: the live charts' time series, sampled from this process's metrics.

A sampler reads the Prometheus registry (summed over worker processes in multiprocess
mode) once a second and keeps the last five minutes as rates and gauges, so the charts
open with history and every client sees the same numbers. It runs only while someone
watches: the first call starts it and it stops after ten minutes without a call, so a
gateway nobody looks at pays nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel, Field

from forebay.admin.metrics import MULTIPROC_ENV

INTERVAL = 1.0
KEEP = 300
IDLE_STOP = 600.0
# Latency quantiles need enough answers to mean something: they are taken over the
# last few seconds rather than one.
LATENCY_WINDOW = 5
CACHE_SERVED = ("hit", "coalesced", "stale", "revalidated")


class Sample(BaseModel):
    t: float = Field(description="Seconds since the epoch.")
    accepted_per_s: float = Field(description="Requests accepted for async delivery (202).")
    delivered_per_s: float = Field(description="Deliveries that finished: succeeded or failed.")
    dead_per_s: float
    requests_per_s: float = Field(description="Answers from the data plane.")
    error_ratio: float | None = Field(description="Share of answers with status 500 or more.")
    queue_depth: float
    governor_limit: float | None = Field(description="None when the governor is off.")
    in_flight: float
    latency_p50_ms: float | None = Field(description="Origin latency, last few seconds.")
    latency_p99_ms: float | None
    cache_hit_ratio: float | None = Field(description="Share of cacheable GETs served stored.")


class Stats(BaseModel):
    interval: float
    samples: list[Sample]


@dataclass
class _Reading:
    """Cumulative counters and current gauges at one moment."""

    t: float
    accepted: float = 0.0
    delivered: float = 0.0
    dead: float = 0.0
    requests: float = 0.0
    errors: float = 0.0
    cache_served: float = 0.0
    cache_all: float = 0.0
    queue_depth: float = 0.0
    governor_limit: float | None = None
    in_flight: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)


def _families() -> Iterable[Any]:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry.collect()
    return REGISTRY.collect()


def read_metrics(now: float) -> _Reading:
    r = _Reading(t=now)
    for family in _families():
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "forebay_accepted_total":
                r.accepted += value
            elif name == "forebay_delivered_total":
                if labels.get("outcome") in ("succeeded", "failed"):
                    r.delivered += value
                elif labels.get("outcome") == "dead":
                    r.dead += value
            elif name == "forebay_requests_total":
                r.requests += value
                if labels.get("status", "").startswith("5"):
                    r.errors += value
            elif name == "forebay_cache_requests_total":
                r.cache_all += value
                if labels.get("result") in CACHE_SERVED:
                    r.cache_served += value
            elif name == "forebay_queue_depth":
                r.queue_depth = max(r.queue_depth, value)
            elif name == "forebay_governor_limit":
                r.governor_limit = (r.governor_limit or 0.0) + value
            elif name == "forebay_origin_inflight":
                r.in_flight += value
            elif name == "forebay_origin_latency_seconds_bucket":
                le = float(labels["le"])
                r.buckets[le] = r.buckets.get(le, 0.0) + value
    return r


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated inside its bucket (as
    Prometheus's histogram_quantile does); None with no observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            span = count - below
            return lower + (le - lower) * ((rank - below) / span if span else 1.0)
        lower, below = le, count
    return lower


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def sample_between(old: _Reading, new: _Reading, window: _Reading) -> Sample:
    dt = max(new.t - old.t, 1e-6)
    delta = {le: new.buckets[le] - window.buckets.get(le, 0.0) for le in new.buckets}
    p50, p99 = quantile(delta, 0.5), quantile(delta, 0.99)
    return Sample(
        t=round(new.t, 3),
        accepted_per_s=(new.accepted - old.accepted) / dt,
        delivered_per_s=(new.delivered - old.delivered) / dt,
        dead_per_s=(new.dead - old.dead) / dt,
        requests_per_s=(new.requests - old.requests) / dt,
        error_ratio=_ratio(new.errors - old.errors, new.requests - old.requests),
        queue_depth=new.queue_depth,
        governor_limit=new.governor_limit,
        in_flight=new.in_flight,
        latency_p50_ms=None if p50 is None else p50 * 1000,
        latency_p99_ms=None if p99 is None else p99 * 1000,
        cache_hit_ratio=_ratio(new.cache_served - old.cache_served, new.cache_all - old.cache_all),
    )


class Sampler:
    def __init__(self) -> None:
        self.samples: deque[Sample] = deque(maxlen=KEEP)
        self._readings: deque[_Reading] = deque(maxlen=LATENCY_WINDOW + 1)
        self._task: asyncio.Task[None] | None = None
        self._last_call = 0.0

    def take(self) -> None:
        reading = read_metrics(time.time())
        if self._readings:
            self.samples.append(sample_between(self._readings[-1], reading, self._readings[0]))
        self._readings.append(reading)

    def watched(self) -> None:
        """Called on every request for stats: keeps the sampler running."""
        self._last_call = time.monotonic()
        if self._task is None or self._task.done():
            self.take()
            self._task = asyncio.create_task(self._run(), name="dashboard-stats")

    async def _run(self) -> None:
        while time.monotonic() - self._last_call < IDLE_STOP:
            await asyncio.sleep(INTERVAL)
            with contextlib.suppress(Exception):  # a bad read must not end the sampling
                self.take()


def stats_router() -> APIRouter:
    sampler = Sampler()
    api = APIRouter(tags=["stats"])

    @api.get("/stats", response_model=Stats)
    async def stats(
        since: Annotated[
            float | None, Query(description="Only samples taken after this time (epoch s).")
        ] = None,
    ) -> Stats:
        """Rates and gauges, one sample a second, the last five minutes."""
        sampler.watched()
        rows = [s for s in sampler.samples if since is None or s.t > since]
        return Stats(interval=INTERVAL, samples=rows)

    return api
