"""Processes sharing one limit re-measure the no-load latency together.

Simulated: four processes flood one worker-pool origin (16 workers), each syncing with
the store four times a second, on a simulated clock; timers run on that clock too. An
origin that becomes slower for good (a deploy) is relearnt within a few group
re-measurements, where one process measuring alone would measure the others' load, and
a steady origin's limit does not creep upward from one re-measurement to the next.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from collections.abc import Callable
from typing import Any

from support.simulated_origin import WorkerPoolOrigin

from forebay.dispatch.sharing import SharedGovernor
from forebay.policy.governor import GovernorSettings
from forebay.store.governor import MemoryGovernorStore

WORKERS = 16


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def simulate(
    processes: int,
    service: Callable[[float], float],
    seconds: float,
    remeasure_every: float = 10.0,
    workers: int = WORKERS,
) -> list[tuple[float, int]]:
    """Run the flood; return (time, requests in flight in all) every half second."""
    clock = Clock()
    store = MemoryGovernorStore(clock)
    settings = GovernorSettings(remeasure_every=remeasure_every)
    events: list[tuple[float, int, str, Any]] = []
    order = itertools.count()

    def at(when: float, kind: str, what: Any) -> None:
        heapq.heappush(events, (when, next(order), kind, what))

    def call_later(delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer()
        at(clock.now + delay, "timer", (timer, fn))
        return timer

    members = [
        SharedGovernor(settings, store, f"p{i}", clock, call_later=call_later)
        for i in range(processes)
    ]
    origin = WorkerPoolOrigin(workers, service(0.0))
    for i, g in enumerate(members):
        at(0.05 * i, "sync", g)  # processes do not sync in lockstep
    at(0.0, "sample", None)
    in_flight, trace = 0, []
    while events:
        now, _, kind, what = heapq.heappop(events)
        if now > seconds:
            break
        clock.now = now
        origin.service = service(now)
        if kind == "sync":
            await what.sync()
            at(now + 0.25, "sync", what)
        elif kind == "timer" and not what[0].cancelled:
            what[1]()
        elif kind == "done":
            g, started = what
            g.finished(now - started, 200)
            in_flight -= 1
        elif kind == "sample":
            trace.append((now, in_flight))
            at(now + 0.5, "sample", None)
        for g in members:  # a flood: every process always has queued work
            for _ in range(g.available()):
                g.started()
                in_flight += 1
                at(origin.admit(now), "done", (g, now))
    return trace


def in_flight_between(trace: list[tuple[float, int]], start: float, end: float) -> float:
    return statistics.median(n for t, n in trace if start <= t < end)


async def test_a_slower_origin_is_relearnt_together() -> None:
    # 20 ms, then 30 ms for good from t = 40 s; re-measurements every 10 s.
    trace = await simulate(4, lambda t: 0.02 if t < 40.0 else 0.03, seconds=100.0)
    before = in_flight_between(trace, 20.0, 40.0)
    after = in_flight_between(trace, 80.0, 100.0)
    assert 0.8 * WORKERS <= before <= 1.5 * WORKERS, before
    # Alone, each re-measuring under the others' load, they used to cut down to a
    # quarter of the workers and climb back to less than half within 10 minutes.
    assert 0.8 * WORKERS <= after <= 1.5 * WORKERS, after


async def test_a_steady_origin_keeps_its_limit_across_re_measurements() -> None:
    trace = await simulate(4, lambda t: 0.02, seconds=100.0)
    early = in_flight_between(trace, 20.0, 40.0)
    late = in_flight_between(trace, 80.0, 100.0)
    assert 0.8 * WORKERS <= early <= 1.5 * WORKERS, early
    assert late <= 1.15 * early, (early, late)  # no creep from one measurement to the next


async def test_an_origin_too_slow_to_measure_together_keeps_its_throughput() -> None:
    # 2 s a request: one at a time, a group measurement would hold everyone for most of
    # the 30 s between two; the processes measure alone instead, at a few requests.
    trace = await simulate(4, lambda t: 2.0, seconds=200.0, remeasure_every=30.0)
    assert in_flight_between(trace, 100.0, 200.0) >= 0.8 * WORKERS


async def test_two_processes_on_a_small_origin_relearn_it_too() -> None:
    # Four workers: the two share a limit of about 5, and a slowdown cuts it to 2 or 3,
    # where one probe each is more than half the limit; still no more than one governor
    # alone measures with, so the group may take what it measures for the no-load latency.
    trace = await simulate(2, lambda t: 0.02 if t < 40.0 else 0.03, 100.0, workers=4)
    assert in_flight_between(trace, 80.0, 100.0) >= 4


async def test_a_group_cut_to_its_floor_by_a_slower_origin_relearns_it_in_seconds() -> None:
    # 30 ms, then 50 ms for good from t = 40 s; the group's next re-measurement is at
    # 60 s. Read as queueing, the slowdown cuts the group to its floor, one request per
    # process or fewer; there, latency that stays high is no queue, and each process
    # re-measures at once rather than wait out the 20 s at next to nothing (as they
    # did, at 1 or 2 in flight).
    trace = await simulate(3, lambda t: 0.03 if t < 40.0 else 0.05, 70.0, remeasure_every=60.0)
    assert in_flight_between(trace, 50.0, 60.0) >= 0.8 * WORKERS


async def test_a_process_whose_share_rounds_to_nothing_still_measures_with_the_group() -> None:
    # Five processes, a limit cut to about 2 by a slower origin: three of them hold no
    # request of the limit. Each measures with the group all the same (one request at
    # least); one that did not would keep the old baseline, read the new latency as
    # queueing once its share came back, and cut the group down again.
    # Before, they stayed at 1 to 4 in flight through three group measurements.
    trace = await simulate(5, lambda t: 0.03 if t < 25.0 else 0.05, 60.0, remeasure_every=10.0)
    assert in_flight_between(trace, 45.0, 60.0) >= 0.8 * WORKERS
