"""Prometheus metrics. One registry per process; with `--workers N` every process writes
to a shared directory (prometheus-client's multiprocess mode) and the admin listener
adds them up."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Sub-millisecond buckets: a gateway's own overhead lives there.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

REQUESTS = Counter(
    "forebay_requests",
    "Requests answered by the data plane.",
    ["endpoint", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "forebay_request_duration_seconds",
    "Time from request to the end of the answer, as the gateway saw it.",
    buckets=_LATENCY_BUCKETS,
)
ORIGIN_SECONDS = Histogram(
    "forebay_origin_latency_seconds",
    "Time from sending a request to the origin until its response headers arrived.",
    buckets=_LATENCY_BUCKETS,
)
ORIGIN_ERRORS = Counter(
    "forebay_origin_errors",
    "Origin exchanges that failed before an answer: refused, reset, timed out.",
    ["kind"],
)


def exposition() -> tuple[bytes, str]:
    """The metrics text for `/metrics`, summed over worker processes when there are several."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


ACCEPTED = Counter("forebay_accepted", "Requests accepted for asynchronous delivery (202).")
DELIVERED = Counter(
    "forebay_delivered",
    "Delivery attempts by outcome: succeeded, failed, retry, dead.",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "forebay_queue_depth",
    "Accepted requests not yet delivered (queued or in flight).",
    multiprocess_mode="max",
)
GOVERNOR_LIMIT = Gauge(
    "forebay_governor_limit",
    "How many requests the governor lets be in flight to the origin.",
    multiprocess_mode="sum",
)
GOVERNOR_SHARED_LIMIT = Gauge(
    "forebay_governor_shared_limit",
    "The in-flight limit all processes on one store share (absent when not shared).",
    multiprocess_mode="max",
)
GOVERNOR_MEMBERS = Gauge(
    "forebay_governor_members",
    "How many processes share the governor's limit.",
    multiprocess_mode="max",
)
ORIGIN_INFLIGHT = Gauge(
    "forebay_origin_inflight",
    "Requests in flight to the origin, live and queued deliveries together.",
    multiprocess_mode="sum",
)
ORIGIN_MIN_RTT = Gauge(
    "forebay_origin_min_rtt_seconds",
    "The origin's latency without load, as the governor last measured it.",
    multiprocess_mode="min",
)
BREAKER_OPEN = Gauge(
    "forebay_breaker_state",
    "The circuit breaker to the origin: 0 closed, 1 half-open (probing), 2 open.",
    multiprocess_mode="max",
)
CACHE_REQUESTS = Counter(
    "forebay_cache_requests",
    "GETs of cached endpoints by result: hit, coalesced (waited for another request's "
    "fetch), stale, revalidated, miss (fetched and stored), bypass (not storable).",
    ["result"],
)
CACHE_BYTES = Gauge(
    "forebay_cache_size_bytes",
    "Memory held by cached answers.",
    multiprocess_mode="sum",
)
AUTH_FAILURES = Counter(
    "forebay_auth_failures",
    "Requests refused by authentication: missing (no key), unknown (no such key or "
    "revoked), forbidden (the consumer may not call the endpoint).",
    ["reason"],
)
RATE_LIMITED = Counter(
    "forebay_rate_limited",
    "Requests refused with 429, by the limit that refused them: consumer, endpoint, "
    "consumer-endpoint.",
    ["limit"],
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "forebay_rate_limit_backend_errors",
    "Rate-limit checks that could not reach the shared counters (Redis); each request "
    "then passed or got 503 as rate_limits.fail says.",
)
ERRORS_CAPTURED = Counter(
    "forebay_errors_captured",
    "Failed exchanges kept as samples for the admin API, by kind.",
    ["kind"],
)
