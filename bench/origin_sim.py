"""An origin whose capacity is physical, for the flood benchmark (`bench/flood.py`).

Run as its own process:

    python -m bench.origin_sim --port N --kind pool|degrading --workers W --service S

Kinds:

- `pool`: W workers (an `asyncio.Semaphore`); every request holds one for S seconds
  (`asyncio.sleep`), the others wait in line for a free worker. Past W requests inside,
  latency grows and throughput does not: the capacity is C = W / S requests per second.
- `degrading`: a database-backed application. There is no queue in front: every request is
  inside at once, and past the knee K (`--knee`, W by default) each request's service time
  grows with the number inside when it arrives, S x (1 + 0.1 x (inside - K)). Beyond 2K
  inside, a share of the requests, min(0.5, (inside - 2K) / 8K), does the work and then fails
  with 503 (a lock or pool timeout: rolled back, not applied). Throughput peaks at
  C = K / S and falls under overload while errors rise.

`--jitter J` (0 by default) spreads every service time over S x U(1 - J, 1 + J). With 0,
a pool's workers started together finish together for as long as it runs.

Routes:

- `POST /orders/{id}`: a write. The body's `id` (the path's when the body has none) is
  APPLIED once the service time is over, unless the `Idempotency-Key` was already applied:
  a repeat with the same key is answered 200 and not applied again; a repeat with a new key
  is applied again (and counted as a duplicate). 201 when applied.
- `GET /items/{id}`: a live read, served by the same workers (same service time).
- `GET /stats`: JSON: writes applied (distinct ids), duplicates applied, repeats ignored,
  503s, in flight now (all, and writes alone) and at most, first and last apply
  (`time.monotonic()`, which is system-wide on Linux, so comparable with the benchmark's
  clock), and a time series sampled every 50 ms of `[t, inside, busy workers, applied]`
  (`?series=0` leaves it out). `?ids=1` adds `applied_ids` (id -> times applied).
- `POST /reset`: forget the counts, the keys and the series (meant for when nothing is
  inside: a request still inside that applies afterwards is counted in the new round).
- `GET /healthz`: 200, outside the worker pool (for readiness checks).

A client that gives up does not stop its request: the server keeps working on it (aiohttp's
`handler_cancellation` off), as a worker pool behind a listen queue would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from aiohttp import web

KINDS = ("pool", "degrading")
SAMPLE_EVERY = 0.05  # seconds between samples of the inside-count
MAX_SAMPLES = 24_000  # 20 minutes of samples; older ones are dropped
SLOWDOWN = 0.1  # service time grows by this share of S per request past the knee
MAX_FAIL_SHARE = 0.5


class Origin:
    def __init__(
        self, kind: str, workers: int, service: float, knee: int, seed: int, jitter: float = 0.0
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self.kind = kind
        self.workers = workers
        self.service = service
        self.knee = knee
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.pool = asyncio.Semaphore(workers)
        self.inside = 0  # requests received and not yet answered (waiting or working)
        self.writes_inside = 0  # of which writes
        self.busy = 0  # requests working (holding a worker, for `pool`; all, for `degrading`)
        self._sampler: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.applied: Counter[str] = Counter()  # id -> times applied
        self.keys: set[str] = set()  # idempotency keys applied
        self.applied_total = 0
        self.duplicates = 0
        self.repeats_ignored = 0
        self.failed_503 = 0
        self.reads = 0
        self.max_inside = self.inside
        self.first_applied_at: float | None = None
        self.last_applied_at: float | None = None
        self.reset_at = time.monotonic()
        self.series: deque[tuple[float, int, int, int]] = deque(maxlen=MAX_SAMPLES)

    # -- capacity -------------------------------------------------------------------------

    def _service_time(self, inside: int = 0) -> float:
        """S, spread by `jitter`, and for `degrading` slowed by the crowd `inside`."""
        spread = self.rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0
        if self.kind == "degrading" and inside > self.knee:
            return self.service * spread * (1 + SLOWDOWN * (inside - self.knee))
        return self.service * spread

    def _fail_share(self, inside: int) -> float:
        if self.kind != "degrading" or inside <= 2 * self.knee:
            return 0.0
        return min(MAX_FAIL_SHARE, (inside - 2 * self.knee) / (8 * self.knee))

    async def _work(self) -> bool:
        """Hold the origin's capacity for one request; False if it failed (a 503)."""
        if self.kind == "pool":
            async with self.pool:
                self.busy += 1
                try:
                    await asyncio.sleep(self._service_time())
                finally:
                    self.busy -= 1
            return True
        seen = self.inside  # the crowd this request arrived into
        self.busy += 1
        try:
            await asyncio.sleep(self._service_time(seen))
        finally:
            self.busy -= 1
        return self.rng.random() >= self._fail_share(seen)

    def _enter(self) -> None:
        self.inside += 1
        self.max_inside = max(self.max_inside, self.inside)

    # -- routes ---------------------------------------------------------------------------

    async def write(self, request: web.Request) -> web.Response:
        raw = await request.read()
        key = request.headers.get("Idempotency-Key")
        try:
            doc = json.loads(raw) if raw else {}
            order_id = str(doc.get("id", request.match_info["id"]))
        except (ValueError, AttributeError):
            order_id = request.match_info["id"]
        self._enter()
        self.writes_inside += 1
        try:
            ok = await self._work()
        finally:
            self.inside -= 1
            self.writes_inside -= 1
        if not ok:
            self.failed_503 += 1
            return web.json_response({"error": "overloaded"}, status=503)
        if key is not None and key in self.keys:
            self.repeats_ignored += 1
            return web.json_response({"id": order_id, "applied": False}, status=200)
        if key is not None:
            self.keys.add(key)
        self.applied[order_id] += 1
        self.applied_total += 1
        if self.applied[order_id] > 1:
            self.duplicates += 1
        now = time.monotonic()
        if self.first_applied_at is None:
            self.first_applied_at = now
        self.last_applied_at = now
        return web.json_response({"id": order_id, "applied": True}, status=201)

    async def read(self, request: web.Request) -> web.Response:
        self._enter()
        try:
            ok = await self._work()
        finally:
            self.inside -= 1
        self.reads += 1
        if not ok:
            return web.json_response({"error": "overloaded"}, status=503)
        return web.json_response({"id": request.match_info["id"], "name": "widget", "qty": 7})

    async def stats(self, request: web.Request) -> web.Response:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "workers": self.workers,
            "service": self.service,
            "knee": self.knee,
            "capacity_per_s": (self.knee if self.kind == "degrading" else self.workers)
            / self.service,
            "applied": len(self.applied),
            "applied_total": self.applied_total,
            "duplicates_applied": self.duplicates,
            "repeats_ignored": self.repeats_ignored,
            "failed_503": self.failed_503,
            "reads": self.reads,
            "inflight": self.inside,
            "writes_inflight": self.writes_inside,
            "busy": self.busy,
            "max_inflight": self.max_inside,
            "reset_at": self.reset_at,
            "first_applied_at": self.first_applied_at,
            "last_applied_at": self.last_applied_at,
            "now": time.monotonic(),
        }
        if request.query.get("series", "1") != "0":
            doc["series"] = list(self.series)
        if request.query.get("ids"):
            doc["applied_ids"] = dict(self.applied)
        return web.json_response(doc)

    async def do_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True, "inflight": self.inside})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "kind": self.kind})

    # -- the sampler ----------------------------------------------------------------------

    async def _sample(self) -> None:
        while True:  # bounded by the process's life: cancelled on shutdown
            self.series.append(
                (round(time.monotonic(), 4), self.inside, self.busy, len(self.applied))
            )
            await asyncio.sleep(SAMPLE_EVERY)

    async def start_sampler(self, app: web.Application) -> None:
        self._sampler = asyncio.create_task(self._sample())

    async def stop_sampler(self, app: web.Application) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler


def make_app(origin: Origin) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/orders/{id}", origin.write)
    app.router.add_get("/items/{id}", origin.read)
    app.router.add_get("/stats", origin.stats)
    app.router.add_post("/reset", origin.do_reset)
    app.router.add_get("/healthz", origin.healthz)
    app.on_startup.append(origin.start_sampler)
    app.on_cleanup.append(origin.stop_sampler)
    return app


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.origin_sim",
        description="An origin with a physical capacity: a worker pool, or a degrading app.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=KINDS, default="pool")
    parser.add_argument("--workers", type=int, default=16, help="W, workers (16)")
    parser.add_argument("--service", type=float, default=0.02, help="S, seconds (0.02)")
    parser.add_argument("--knee", type=int, default=None, help="K for degrading (W)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for 503s (1)")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="service time spread, +-share of S (0)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.service <= 0 or (args.knee is not None and args.knee < 1):
        parser.error("--workers and --knee must be >= 1, --service > 0")
    if not 0 <= args.jitter < 1:
        parser.error("--jitter must be in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loop_factory: Any = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    loop = loop_factory() if loop_factory is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    origin = Origin(
        args.kind, args.workers, args.service, args.knee or args.workers, args.seed, args.jitter
    )
    web.run_app(
        make_app(origin),
        host=args.host,
        port=args.port,
        backlog=4096,
        access_log=None,
        print=None,
        handler_cancellation=False,
        loop=loop,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
