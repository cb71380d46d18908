"""Cache store: what a cache hit costs when the entry is in the gateway's own memory (the
design forebay uses on every store) and when it is fetched from Redis on every hit (one
cache shared by all instances), measured in the same run, on the same core.

Both designs go through the real cache stage (`gateway/cache.py`: key, lookup, variant
match, age, `serve` and its two sends, the hit counter), called in this process on a uvloop
event loop with a `send` that does nothing, so what is compared is the cache's part of a
hit, not the HTTP server's:

- local: the stage over a `MemoryResponseCache` holding the entry (and 1 000 others);
- shared: one `GET` of the entry from a private `redis-server` (no persistence) with
  redis.asyncio and hiredis, through the client the Redis store builds
  (`store/redis_conn.connect`), the stored bytes decoded into `CachedResponse` variants
  (JSON metadata, then the bodies), then the same stage over them.

The entry is one variant of a JSON answer with an origin's usual headers (Content-Type,
Date, Cache-Control, ETag, Vary: Accept-Encoding, Server), at three body sizes: the 62-byte
body of `bench.cache`, 4 KB and 64 KB.

Per body size and design:

- latency: hits one at a time, each timed; p50 and p99;
- throughput: 64 tasks hitting at once; CPU time of this process (`time.process_time`)
  per hit, hits per second, and, for the shared design, Redis's own CPU per hit (its
  /proc/PID/stat).

This process is pinned to CPU 0, redis-server to CPU 1. Rounds alternate the order of the
designs; the figures are medians over the rounds. With `--gateway-rps R`, the hit rate
`bench.cache` measured for forebay on one core, it also estimates hits per second per
gateway core for each design with that scenario's 62-byte body: the gateway's CPU per hit
(1/R), less the local cache's part, plus the shared one's.

Run with `python -m bench.cache_store` (`make bench-cache-store`); `--help` lists the
options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from bench.accept_setup import LOAD_CPU, REDIS, SERVER_CPU, start_redis
from bench.common import (
    LOOPBACK,
    BenchError,
    Service,
    Services,
    cpu_snapshot,
    exit_on_sigterm,
    median,
    others_cores,
)
from bench.nginx_proxy import BODY, PATH
from bench.report import (
    add_json_option,
    busy_lines,
    cpu_line,
    fmt_list,
    print_json,
    progress,
    python_line,
    run_guarded,
    scenario_info,
)

DESIGNS = ("local", "shared")
SIZES = {"62 B": len(BODY), "4 KB": 4096, "64 KB": 65536}
FILLER = 1000  # other entries in each store, so the lookup is not in a one-key table
REDIS_PREFIX = "forebay-bench:cache:"
REQUEST_HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"python-httpx/0.27.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
]
ORIGIN_HEADERS = [
    (b"content-type", b"application/json"),
    (b"date", b"Mon, 30 Nov 2026 12:00:00 GMT"),
    (b"cache-control", b"max-age=300"),
    (b"etag", b'"5d41402abc4b2a76b9719d911017c592"'),
    (b"vary", b"Accept-Encoding"),
    (b"server", b"nginx/1.22.1"),
]

Hit = Callable[[], Awaitable[None]]


# --- the entry, and how a shared cache would store it ----------------------------------------


def json_body(size: int) -> bytes:
    """A JSON body of exactly `size` bytes (the 62-byte one is bench.cache's)."""
    if size == len(BODY):
        return BODY.encode()
    items: list[str] = []
    n = 0
    while True:
        item = f'{{"id":{n},"name":"widget {n}","price":9.99,"in_stock":true,"qty":7}}'
        if len(",".join([*items, item])) + 2 > size:
            break
        items.append(item)
        n += 1
    text = "[" + ",".join(items) + "]"
    return (text + " " * (size - len(text))).encode()


def make_entry(body: bytes) -> Any:
    from forebay.policy.cache_keys import vary_values
    from forebay.store.cache import CachedResponse

    vary = ("accept-encoding",)
    return CachedResponse(
        status=200,
        headers=list(ORIGIN_HEADERS),
        body=body,
        stored_at=time.time(),
        ttl=3600.0,
        etag='"5d41402abc4b2a76b9719d911017c592"',
        vary=vary,
        vary_values=vary_values(vary, REQUEST_HEADERS),
        endpoint_id="ep_bench",
    )


def encode(variants: Sequence[Any]) -> bytes:
    """A key's variants as one Redis value: JSON metadata, a newline, the bodies."""
    meta = [
        {
            "status": v.status,
            "headers": [[n.decode("latin-1"), x.decode("latin-1")] for n, x in v.headers],
            "stored_at": v.stored_at,
            "ttl": v.ttl,
            "swr": v.stale_while_revalidate,
            "sie": v.stale_if_error,
            "initial_age": v.initial_age,
            "etag": v.etag,
            "last_modified": v.last_modified,
            "consumer": v.consumer,
            "vary": list(v.vary),
            "vary_values": list(v.vary_values),
            "shared_with_authorization": v.shared_with_authorization,
            "endpoint_id": v.endpoint_id,
            "size": v.size,
            "body": len(v.body),
        }
        for v in variants
    ]
    head = json.dumps(meta, separators=(",", ":")).encode()
    return b"".join([head, b"\n", *(v.body for v in variants)])


def decode(raw: bytes) -> list[Any]:
    """What `encode` stored, as `CachedResponse` variants."""
    from forebay.store.cache import CachedResponse

    end = raw.index(b"\n")
    at = end + 1
    variants = []
    for m in json.loads(raw[:end]):
        body = raw[at : at + m["body"]]
        at += m["body"]
        variants.append(
            CachedResponse(
                status=m["status"],
                headers=[(n.encode("latin-1"), x.encode("latin-1")) for n, x in m["headers"]],
                body=body,
                stored_at=m["stored_at"],
                ttl=m["ttl"],
                stale_while_revalidate=m["swr"],
                stale_if_error=m["sie"],
                initial_age=m["initial_age"],
                etag=m["etag"],
                last_modified=m["last_modified"],
                consumer=m["consumer"],
                vary=tuple(m["vary"]),
                vary_values=tuple(m["vary_values"]),
                shared_with_authorization=m["shared_with_authorization"],
                endpoint_id=m["endpoint_id"],
                size=m["size"],
            )
        )
    return variants


class Fetched:
    """Stands in for the store in the shared design's cache stage: its lookup answers with
    the variants just fetched from Redis (set right before the stage runs, with no await
    in between, so concurrent hits do not see each other's)."""

    generation = 0

    def __init__(self) -> None:
        self.variants: list[Any] | None = None

    def lookup(self, key: str) -> list[Any] | None:
        return self.variants


# --- the two designs ---------------------------------------------------------------------------


async def _no_send(message: dict[str, Any]) -> None:
    return None


async def _no_receive() -> dict[str, Any]:
    raise BenchError("a cache hit read the request body")


def stage(store: Any) -> Any:
    from forebay.gateway.cache import Cache

    async def origin(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise BenchError("a cache hit reached the origin")

    return Cache(origin, store, max_entry=1 << 20, hold_seconds=30.0)


def scope_for(path: str) -> dict[str, Any]:
    """A GET's ASGI scope as routing leaves it. Built once per measurement and reused: the
    request's own objects (the exchange, its id) cost the same in both designs."""
    from forebay.catalog.catalog import Route
    from forebay.catalog.endpoint import CachePolicy, EndpointPolicy
    from forebay.gateway.exchange import Exchange

    policy = EndpointPolicy(managed=True, cache=CachePolicy(ttl=3600))
    route = Route("ep_bench", "GET /v1/items/{id}", "GET", "/v1/items/{id}", policy)
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": REQUEST_HEADERS,
        "forebay": Exchange(route=route),
    }


def local_hit(cache_stage: Any, path: str) -> Hit:
    scope = scope_for(path)

    async def hit() -> None:
        await cache_stage(scope, _no_receive, _no_send)

    return hit


def shared_hit(cache_stage: Any, fetched: Fetched, client: Any, path: str) -> Hit:
    key = REDIS_PREFIX + path
    scope = scope_for(path)

    async def hit() -> None:
        raw = await client.get(key)
        fetched.variants = decode(raw)
        await cache_stage(scope, _no_receive, _no_send)

    return hit


async def check_same_answer(hits: dict[str, Hit], path: str, stages: dict[str, Any]) -> None:
    """Both designs answer a hit with the same status, headers and body (the request id and
    Age aside: a second may turn between the two)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for design, cache_stage in stages.items():
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        scope = scope_for(path)
        if design == "shared":
            await hits["shared"]()  # sets the fetched variants, as a hit does
        await cache_stage(scope, _no_receive, send)
        if scope["forebay"].cache != "hit" or len(sent) != 2:
            raise BenchError(f"{design}: not a cache hit ({scope['forebay'].cache}, {sent!r:.200})")
        start, body = sent
        headers = [h for h in start["headers"] if h[0] not in (b"x-request-id", b"age")]
        seen[design] = [{**start, "headers": headers}, body]
    if seen["local"] != seen["shared"]:
        raise BenchError(f"the designs answer differently:\n{seen!r:.2000}")


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Figures:
    p50_us: list[float] = field(default_factory=list)
    p99_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # this process, per hit, 64 at once
    hits_per_s: list[float] = field(default_factory=list)  # 64 at once
    redis_cpu_us: list[float] = field(default_factory=list)  # redis-server, per hit


async def one_at_a_time(hit: Hit, n: int) -> tuple[float, float]:
    """p50 and p99 of `n` hits, one after the other, in µs."""
    times = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await hit()
        times.append(clock() - t0)
    cuts = statistics.quantiles(times, n=100)
    return cuts[49] / 1000.0, cuts[98] / 1000.0


async def concurrently(hit: Hit, n: int, tasks: int) -> tuple[float, float]:
    """CPU seconds of this process and wall seconds for `n` hits by `tasks` tasks at once."""
    each = max(1, n // tasks)

    async def worker() -> None:
        for _ in range(each):
            await hit()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.process_time() - cpu0, time.perf_counter() - wall0


async def measure(args: argparse.Namespace, port: int, redis: Service) -> dict[str, Any]:
    from forebay.store.cache import MemoryResponseCache
    from forebay.store.redis_conn import connect, parse_url

    client = connect(parse_url(f"redis://{LOOPBACK}:{port}/0"))
    found = {size: {d: Figures() for d in DESIGNS} for size in SIZES}
    decode_us: dict[str, float] = {}
    try:
        local = MemoryResponseCache(256 << 20)
        fetched = Fetched()
        stages = {"local": stage(local), "shared": stage(fetched)}
        filler = make_entry(json_body(len(BODY)))
        for i in range(FILLER):
            local.put(f"/v1/other/{i}", filler)
        await client.mset({f"{REDIS_PREFIX}/v1/other/{i}": encode([filler]) for i in range(FILLER)})
        hits: dict[str, dict[str, Hit]] = {}
        for label, size in SIZES.items():
            path = f"{PATH}/{size}"
            entry = make_entry(json_body(size))
            local.put(path, entry)
            raw = encode([entry])
            await client.set(REDIS_PREFIX + path, raw)
            hits[label] = {
                "local": local_hit(stages["local"], path),
                "shared": shared_hit(stages["shared"], fetched, client, path),
            }
            await check_same_answer(hits[label], path, stages)
            count = 20_000
            t0 = time.perf_counter()
            for _ in range(count):
                decode(raw)
            decode_us[label] = (time.perf_counter() - t0) / count * 1e6
        progress(f"warm-up ({args.warmup} hits per design and size, one at a time and 64 at once)")
        for label in SIZES:
            for design in DESIGNS:
                await one_at_a_time(hits[label][design], args.warmup)
                await concurrently(hits[label][design], args.warmup, args.concurrency)
        for i in range(args.runs):
            for label in SIZES:
                order = DESIGNS if i % 2 == 0 else DESIGNS[::-1]
                for design in order:
                    progress(f"round {i + 1}/{args.runs}: {label} {design}")
                    hit, fig = hits[label][design], found[label][design]
                    p50, p99 = await one_at_a_time(hit, args.hits)
                    redis_before = redis.cpu_seconds()
                    cpu, wall = await concurrently(hit, args.hits, args.concurrency)
                    redis_cpu = redis.cpu_seconds() - redis_before
                    done = args.hits // args.concurrency * args.concurrency
                    fig.p50_us.append(p50)
                    fig.p99_us.append(p99)
                    fig.cpu_us.append(cpu / done * 1e6)
                    fig.hits_per_s.append(done / wall)
                    fig.redis_cpu_us.append(redis_cpu / done * 1e6)
    finally:
        await client.aclose()
    return {"figures": found, "decode_us": decode_us}


BUSY_CORES = 0.2  # other processes' CPU use past which the figures are flagged


def summarize(found: dict[str, Any], gateway_rps: float | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for label in SIZES:
        row: dict[str, Any] = {}
        for design in DESIGNS:
            fig: Figures = found["figures"][label][design]
            row[design] = {
                "p50_us": median(fig.p50_us),
                "p99_us": median(fig.p99_us),
                "cpu_us_per_hit": median(fig.cpu_us),
                "hits_per_s": median(fig.hits_per_s),
                "redis_cpu_us_per_hit": median(fig.redis_cpu_us),
                "per_run_cpu_us": fig.cpu_us,
                "per_run_p50_us": fig.p50_us,
            }
        local, shared = row["local"], row["shared"]
        row["ratio_p50"] = shared["p50_us"] / local["p50_us"]
        row["ratio_cpu"] = shared["cpu_us_per_hit"] / local["cpu_us_per_hit"]
        row["decode_us"] = found["decode_us"][label]
        if shared["redis_cpu_us_per_hit"] > 0:
            row["redis_hits_per_core"] = 1e6 / shared["redis_cpu_us_per_hit"]
        if gateway_rps and SIZES[label] == len(BODY):  # bench.cache's hits carry this body
            per_hit = 1e6 / gateway_rps
            shared_hit_us = per_hit - local["cpu_us_per_hit"] + shared["cpu_us_per_hit"]
            row["gateway"] = {
                "local_hits_per_core": gateway_rps,
                "shared_hits_per_core": 1e6 / shared_hit_us,
                "shared_over_local": per_hit / shared_hit_us,
            }
        rows[label] = row
    return {"sizes": rows, "gateway_rps": gateway_rps}


def render(summary: dict[str, Any], info: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"Cache store: median of {args.runs} round(s), {args.hits} hits per measurement,"
        f" {args.concurrency} at once for the CPU figures",
        "",
        f"{'design':<7} {'body':>6} {'p50 µs':>7} {'p99 µs':>7} {'CPU µs/hit':>10}"
        f" {'hits/s':>8} {'Redis CPU µs/hit':>16}   per run (CPU µs/hit)",
    ]
    for label, row in summary["sizes"].items():
        for design in DESIGNS:
            d = row[design]
            redis = f"{d['redis_cpu_us_per_hit']:.1f}" if design == "shared" else "-"
            lines.append(
                f"{design:<7} {label:>6} {d['p50_us']:>7.1f} {d['p99_us']:>7.1f}"
                f" {d['cpu_us_per_hit']:>10.1f} {d['hits_per_s']:>8.0f} {redis:>16}"
                f"   {fmt_list(d['per_run_cpu_us'], '.1f')}"
            )
    lines += ["", "shared/local:"]
    for label, row in summary["sizes"].items():
        extra = (
            f", one Redis core serves {row['redis_hits_per_core']:,.0f} hits/s"
            if "redis_hits_per_core" in row
            else ""
        )
        lines.append(
            f"  {label:>6}: latency p50 x{row['ratio_p50']:.1f}, CPU per hit"
            f" x{row['ratio_cpu']:.1f} (decoding the entry {row['decode_us']:.1f} µs){extra}"
        )
    if summary["gateway_rps"]:
        lines += [
            "",
            f"per gateway core, from {summary['gateway_rps']:,.0f} hits/s measured by"
            " bench.cache (local):",
        ]
        for label, row in summary["sizes"].items():
            if "gateway" not in row:
                continue
            g = row["gateway"]
            lines.append(
                f"  {label:>6}: local {g['local_hits_per_core']:,.0f} hits/s,"
                f" shared about {g['shared_hits_per_core']:,.0f} (x{g['shared_over_local']:.2f})"
            )
    lines += [
        "",
        python_line(info),
        cpu_line(info, f"pinned: this process CPU {SERVER_CPU}, redis-server CPU {LOAD_CPU}"),
        f"tools:    {info['redis']}, redis-py {info['redis_py']}, hiredis {info['hiredis']},"
        f" uvloop {info['uvloop']}",
        f"command:  {info['command']}",
    ]
    lines += busy_lines(summary["others_cores"], BUSY_CORES, "the run")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache_store",
        description="Cache hits from local memory against hits fetched from Redis.",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds over all targets (3)")
    parser.add_argument(
        "--hits", type=int, default=20_000, help="hits per measurement (20000; >= 1000)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="hits at once for the CPU figures (64)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2_000, help="warm-up hits per design and size (2000)"
    )
    parser.add_argument(
        "--gateway-rps",
        type=float,
        default=None,
        help="forebay's hit rate on one core from bench.cache, for the per-core estimate",
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hits < 1000 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--runs and --concurrency must be >= 1, --hits >= 1000, --warmup >= 0")
    if args.hits < args.concurrency:
        parser.error("--hits must be at least --concurrency")
    if args.gateway_rps is not None and args.gateway_rps <= 0:
        parser.error("--gateway-rps must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    import uvloop

    info = scenario_info("bench.cache_store", argv, {"redis": [REDIS, "--version"]})
    info["redis"] = info["redis"].split(" sha=")[0]
    for key, package in (("redis_py", "redis"), ("hiredis", "hiredis"), ("uvloop", "uvloop")):
        info[key] = metadata.version(package)
    if info["pinning"]:
        os.sched_setaffinity(0, {SERVER_CPU})
    else:
        progress("WARNING: cannot pin to CPUs 0 and 1 (no taskset?); figures will be noisy")
    found: list[dict[str, Any]] = []

    def body() -> None:
        with Services(prefix="forebay-bench-cache-store-") as services:
            port = start_redis(services, "redis", fsync=False)
            redis = services.started[-1]
            before = cpu_snapshot([redis])
            found.append(uvloop.run(measure(args, port, redis)))
            found[0]["others_cores"] = others_cores(before, cpu_snapshot([redis]))

    status = run_guarded(body)
    if status is not None:
        return status
    summary = summarize(found[0], args.gateway_rps)
    summary["others_cores"] = found[0]["others_cores"]
    print(render(summary, info, args))
    if args.json:
        print_json({"scenario": "cache_store", "machine": info, **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
