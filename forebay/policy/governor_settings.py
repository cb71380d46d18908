"""The governor's settings (the governor is `governor.py`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GovernorSettings:
    initial_limit: float = 8.0
    min_limit: float = 1.0
    max_limit: float = 1000.0
    window: float = 0.25
    min_samples: int = 8
    buffer: float = 0.05
    # Latency the gateway itself adds when busy (event-loop lag, a store write): a few
    # milliseconds of it must not read as the origin queueing.
    allowance: float = 0.001
    # How many standard errors of its median a baseline is given (`remeasure.py`): with
    # answers that vary by 10-20%, a baseline from 8 of them was drawn low often enough
    # to hold the limit at half the origin's capacity for a whole flood.
    baseline_noise: float = 1.0
    smoothing: float = 0.5
    # While latency is flat, try `probe x sqrt(limit)` more (a quarter of Gradient2's
    # queue size): enough to find capacity that appears, little enough that the probe
    # above the knee queues about one request in the origin (each a live read waits
    # behind). With `buffer`, the limit settles near (1 + buffer) x W + probe x sqrt(W)
    # on an origin whose answers take the same time; a little higher where they vary,
    # by the baselines' margin (`baseline_noise`).
    probe: float = 0.25
    # In slow start the limit grows by `slow_start x limit` per window (halved by the
    # smoothing): a quarter per two round trips, so the step past the knee is small.
    slow_start: float = 0.5
    # Slow start ends once the median latency ratio has risen `early_exit x buffer`
    # above its lowest of the climb (HyStart's delay increase, about 1/8 of the RTT).
    early_exit: float = 1.0
    # The first climb ends only after this many windows in a row read as queueing or
    # latency rising; meanwhile the limit holds (`governor.py`, `_doubts_the_climb_ends`).
    climb_exit_windows: int = 3
    backoff: float = 0.8
    min_overloads: int = 2
    overload_share: float = 0.1
    app_limited: float = 0.8
    remeasure_every: float = 30.0
    min_limit_probe: float = 2.0
    # False when several processes share the origin: one re-measuring at a low limit
    # while the others keep sending measures their load, and taking that for the
    # no-load latency would let the shared limit creep upward. Then it only lowers.
    remeasure_raises: bool = True
    # After a re-measurement finds the origin slower for good, start again from three
    # quarters of the highest limit that had flat latency (a pool whose requests got
    # slower keeps its workers), not from the floor the slowdown cut it to: slow start
    # from 1, a window per 8 answers, took most of 10 s and, stopped early by the noise
    # of such small windows, failed half the time. Off where processes share one limit
    # (`forebay/dispatch/sharing.py`), whose group finds its way back together.
    resume_after_relearn: bool = True
    breaker_failures: int = 5
    cooldown: float = 1.0
    max_cooldown: float = 30.0
