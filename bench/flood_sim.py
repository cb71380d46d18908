"""Flood, simulated: the flood scenario of `bench.flood` on a virtual clock, to try the
governor's settings in seconds before measuring them for real.

The governor (`forebay.policy.governor`) is the real one; everything around it is a
model:

- the origin: `pool` (W workers, a FIFO queue in front, each request holding a worker for
  S x U(1 - j, 1 + j), with j the `--jitter`, 0.1 by default) or `degrading` (no queue: a
  request arriving when n are inside, itself included, takes S x (1 + 0.1 x (n - K)) past
  the knee K = W, times the same spread), as `bench/origin_sim.py`; with `--tail P`, a
  share P of requests takes `--tail-factor` times longer whatever the load (a heavy
  tail), and C counts from the mean service time;
- the gateway: each hop (gateway to origin, origin to gateway) takes `--gap` seconds;
  N writes wait in the queue from the moment the flood starts; live reads arrive as a
  Poisson stream at `--read-rate` per second from `--lead` seconds before the flood
  (as in `bench.flood`, so the no-load latency is measured on live traffic), always go
  first, and count in the governor's in-flight; the writes fill what is left;
- fixed xM: M x W writes in flight, the reads on top, uncounted, as `async.concurrency`.

Per mode, medians over `--seeds` runs: the drain (first write sent to last one answered,
over N / C; also its 90th percentile and worst over the seeds), its first and second
halves (each over its own N / C: the start-up against the steady state), live-read p50
and p99 over S, and the governor's limit (median once the flood is a second old, and
the highest).

What it leaves out, so its figures run below `bench.flood`'s: the gateway's own CPU (the
burst being taken in while the first deliveries go out, the event loop's lag), the cost
of a delivery beyond `--gap`, and the real origin's timing noise. It ranks settings, and
the real flood decides: `docs/benchmarks.md` has cases where the two disagreed. With
`--jitter 0` every request takes exactly S, as in `bench/origin_sim.py`, whose workers then
finish in step (a request beyond W waits for the next wave, not for a W-th of S).

    python -m bench.flood_sim --set slow_start=1.0 --set probe=0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import statistics
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

from forebay.policy.governor import Governor, GovernorSettings

SLOWDOWN = 0.1  # the degrading origin's service time grows by this share of S per request past K


@dataclasses.dataclass
class Flood:
    kind: str
    workers: int
    service: float
    n: int
    read_rate: float
    gap: float
    lead: float
    seed: int
    jitter: float = 0.1  # each service time is S x U(1 - jitter, 1 + jitter)
    tail: float = 0.0  # this share of requests takes `tail_factor` times longer
    tail_factor: float = 10.0

    def service_time(self, rng: random.Random, slower: float = 1.0) -> float:
        spread = rng.uniform(1 - self.jitter, 1 + self.jitter)
        if self.tail and rng.random() < self.tail:
            spread *= self.tail_factor
        return self.service * slower * spread

    @property
    def mean_service(self) -> float:
        return self.service * (1 + self.tail * (self.tail_factor - 1))


class FixedConcurrency:
    """`async.concurrency`: at most `n` writes in flight; reads are not counted."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.writes = 0
        self.limit = float(n)

    def available(self, now: float) -> int:
        return max(0, self.n - self.writes)

    def started(self, now: float, write: bool) -> None:
        self.writes += write

    def finished(self, now: float, latency: float, write: bool) -> None:
        self.writes -= write


class Governed:
    """The real governor, as the dispatcher and the live path call it."""

    def __init__(self, settings: GovernorSettings) -> None:
        self.governor = Governor(settings, now=0.0)

    @property
    def limit(self) -> float:
        return self.governor.limit

    def available(self, now: float) -> int:
        return self.governor.available(now)

    def started(self, now: float, write: bool) -> None:
        self.governor.started(now)

    def finished(self, now: float, latency: float, write: bool) -> None:
        self.governor.finished(now, latency, 200, kind="write" if write else "read")


def simulate(f: Flood, sender: FixedConcurrency | Governed) -> dict[str, float]:
    rng = random.Random(f.seed)
    # (time, order, what, (sent at, a write)): `order` keeps simultaneous events in turn.
    events: list[tuple[float, int, str, tuple[float, bool]]] = []
    order = 0

    def at(t: float, what: str, request: tuple[float, bool]) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, what, request))

    inside = 0
    free = f.workers
    waiting: deque[tuple[float, bool]] = deque()  # the pool's queue
    queued, answered, half_at = f.n, 0, 0.0
    reads: list[float] = []
    limits: list[tuple[float, float]] = []
    now = 0.0
    next_read = rng.expovariate(f.read_rate)

    def send(request: tuple[float, bool]) -> None:
        sender.started(now, request[1])
        at(now + f.gap, "arrive", request)

    while answered < f.n:
        if queued and now >= f.lead:
            for _ in range(min(queued, sender.available(now))):
                queued -= 1
                send((now, True))
        upcoming = min(next_read, events[0][0] if events else next_read)
        if queued and now < f.lead < upcoming:
            now = f.lead  # the flood starts
            continue
        if next_read <= upcoming:
            now = next_read
            next_read = now + rng.expovariate(f.read_rate)
            send((now, False))
            continue
        now, _, what, request = heapq.heappop(events)
        if what == "arrive":
            inside += 1
            if f.kind == "degrading":
                slower = 1 + SLOWDOWN * max(0, inside - f.workers)
                at(now + f.service_time(rng, slower), "done", request)
            elif free:
                free -= 1
                at(now + f.service_time(rng), "done", request)
            else:
                waiting.append(request)
        elif what == "done":
            inside -= 1
            if f.kind == "pool":
                if waiting:
                    at(now + f.service_time(rng), "done", waiting.popleft())
                else:
                    free += 1
            at(now + f.gap, "answer", request)
        else:
            sent, write = request
            sender.finished(now, now - sent, write)
            if write:
                answered += 1
                if answered == f.n // 2:
                    half_at = now
            elif now >= f.lead:
                reads.append(now - sent)
            limits.append((now, sender.limit))
    ideal = f.n / (f.workers / f.mean_service)
    reads.sort()
    settled = [limit for t, limit in limits if t >= f.lead + 1.0] or [sender.limit]
    return {
        "drain": (now - f.lead) / ideal,
        "first_half": (half_at - f.lead) / (ideal / 2),
        "second_half": (now - half_at) / (ideal / 2),
        "read_p50": reads[len(reads) // 2] / f.service if reads else 0.0,
        "read_p99": reads[int(0.99 * len(reads))] / f.service if reads else 0.0,
        "limit": statistics.median(settled),
        "limit_max": max(limit for _, limit in limits),
    }


def settings_from(pairs: Sequence[str]) -> GovernorSettings:
    fields = {f.name: f.type for f in dataclasses.fields(GovernorSettings)}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"--set {pair}: no such governor setting (known: {', '.join(fields)})")
        kind = str(fields[name])
        if "bool" in kind:
            values[name] = value.lower() in ("1", "true", "yes")
        else:
            values[name] = int(value) if "int" in kind else float(value)
    return GovernorSettings(**values)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="writes (3000)")
    parser.add_argument("--workers", type=int, default=16, help="W, and the knee K (16)")
    parser.add_argument("--service", type=float, default=0.05, help="S, seconds (0.05)")
    parser.add_argument("--kinds", default="pool,degrading", help="origin kinds (both)")
    parser.add_argument("--fixed", default="1", help="fixed settings, multiples of W (1)")
    parser.add_argument("--read-rate", type=float, default=20.0, help="live reads/s (20)")
    parser.add_argument("--gap", type=float, default=0.0003, help="seconds per hop (0.0003)")
    parser.add_argument("--lead", type=float, default=1.0, help="reads before the flood (1 s)")
    parser.add_argument(
        "--jitter", type=float, default=0.1, help="service time spread, +-share of S (0.1)"
    )
    parser.add_argument(
        "--tail", type=float, default=0.0, help="share of requests that take --tail-factor x S (0)"
    )
    parser.add_argument("--tail-factor", type=float, default=10.0, help="(10)")
    parser.add_argument("--seeds", type=int, default=10, help="runs per mode; medians (10)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a governor setting"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args.set)
    fixed = [float(m) for m in args.fixed.split(",") if m]
    for kind in args.kinds.split(","):
        print(f"{kind}: W = {args.workers}, S = {args.service * 1000:g} ms, N = {args.n}")
        modes: list[tuple[str, Any]] = [
            (f"fixed x{m:g}", lambda m=m: FixedConcurrency(round(m * args.workers))) for m in fixed
        ]
        modes.append(("forebay", lambda: Governed(settings)))
        for name, make in modes:
            runs = [
                simulate(
                    Flood(
                        kind,
                        args.workers,
                        args.service,
                        args.n,
                        args.read_rate,
                        args.gap,
                        args.lead,
                        seed,
                        args.jitter,
                        args.tail,
                        args.tail_factor,
                    ),
                    make(),
                )
                for seed in range(args.seeds)
            ]
            m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            drains = sorted(r["drain"] for r in runs)
            print(
                f"  {name:10s} drain {m['drain']:.3f} (halves {m['first_half']:.3f}, "
                f"{m['second_half']:.3f}; p90 {drains[int(0.9 * len(drains))]:.3f}, "
                f"worst {drains[-1]:.3f})  read p50 {m['read_p50']:.2f}x  "
                f"p99 {m['read_p99']:.2f}x  limit {m['limit']:.1f} (max {m['limit_max']:.1f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
