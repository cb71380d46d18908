"""The governor: how many requests may be in flight to the origin.

Events in (an exchange started; finished with its latency and status; failed without an
answer; an origin asked to wait with `Retry-After`), decisions out (`allowed(now)`: how
many may be in flight; zero while paused or while the breaker is open). No I/O, no
clock of its own: every call takes `now`.

The controller combines the mechanisms of the adaptive limiters it learns from:

- Like Envoy's gradient controller, it compares each window's median latency with the
  no-load latency measured at low concurrency (the median, not the minimum, so a noisy
  origin is not mistaken for a queueing one), and scales the limit by the gradient
  `(1 + buffer) * bound / rtt`, clamped to [0.5, 1], where the bound is the baseline
  plus the standard error of its median (a baseline drawn low would otherwise read as
  queueing for good) plus `allowance`; while latency stays flat it adds a headroom of
  `probe * sqrt(limit)` to keep probing upward.
- Latency is compared per kind of exchange (the endpoint): an API whose reports take
  500 ms and whose reads take 5 ms would otherwise read a shift in its traffic mix as
  queueing. Each sample counts as its latency divided by its kind's bound.
- Like TCP, it starts slow: until queueing is first seen it grows per round trip, on
  exchanges started since the last step, and stops at a rise in latency (HyStart).
- Like Netflix's limiters, it never grows while the limit is not used (app-limited):
  a window whose peak in-flight stayed under 80% of the limit cannot raise it.
- Like Vector's ARC, overload signals (429, 503, timeouts) cut the limit
  multiplicatively, once per window, and `Retry-After` pauses sending. It takes at
  least two of them, and a tenth of the window's answers, to count: one request that
  keeps failing is that request's problem, not the origin's.
- Like Envoy, it measures the no-load latency first, and again now and then (every
  `remeasure_every` seconds, jittered by the caller's random draw; `remeasure.py`): for
  one window it holds the limit at `min_limit_probe` and takes that window's medians as
  the new baselines, so a baseline that drifted (a slower origin after a deploy) is
  relearnt.
  Cut to the floor with latency still high, it re-measures at once (that is no queue),
  and a baseline that rose starts slow start again.
  Processes that share one limit re-measure together (`remeasure_together`), since one
  measuring alone would measure the others' load.
- A circuit breaker (`breaker.py`) opens after `breaker_failures` consecutive failures
  without an answer; while open nothing is sent; after a cool-down one probe goes
  through (half-open); its success closes the breaker with the limit halved, its
  failure doubles the cool-down.
"""

from __future__ import annotations

import math

from forebay.policy.breaker import Breaker, CircuitBreaker
from forebay.policy.governor_settings import GovernorSettings
from forebay.policy.latency_window import Window, median
from forebay.policy.remeasure import Remeasuring

OVERLOAD_STATUS = frozenset({429, 503})
# Below this share of the highest limit that had flat latency (after overload cuts or the
# breaker), grow as in slow start: the gentle probe alone would take minutes to get back.
RECLIMB = 0.75
# A gradient this low (latency a sixth above the bound) is a queue, not a stall: the first
# climb ends on one such window. Past a degrading origin's knee, every window held there
# slowed all its requests.
CLEAR_QUEUEING = 0.9

__all__ = ["OVERLOAD_STATUS", "Breaker", "Governor", "GovernorSettings"]


class Governor(Remeasuring):
    def __init__(self, settings: GovernorSettings, now: float, jitter: float = 1.0) -> None:
        """`jitter` in [0.75, 1.25] spreads re-measurements of several governors apart."""
        self.settings = settings
        self.limit = settings.initial_limit
        self.baselines: dict[str, float] = {}
        self.noise: dict[str, float] = {}  # remeasure.py: `_set_baseline`
        self.last_ratio: float | None = None
        self.paused_until = 0.0
        self.in_flight = 0
        self._window = Window(now)
        self._breaker = CircuitBreaker(
            settings.breaker_failures, settings.cooldown, settings.max_cooldown
        )
        # Start by measuring the no-load latency, at low concurrency (remeasure.py says
        # what each of these fields is).
        self._measuring = True
        self._together = False
        self._measure_raises = settings.remeasure_raises
        self._together_until = math.inf
        self._saved_limit = self.limit
        self.limit = min(self.limit, settings.min_limit_probe)
        self._jitter = jitter
        self._good = settings.initial_limit  # the highest limit seen with flat latency
        self._ssthresh = math.inf  # below it, grow by doubling; set where queueing began
        self._climb_floor = math.inf  # the lowest latency ratio of the current slow start
        self._doubts = 0  # windows in a row that would have ended the first climb
        self._next_remeasure = now + settings.remeasure_every * jitter
        self._floor_windows = 0

    @property
    def breaker(self) -> Breaker:
        return self._breaker.state

    @property
    def target(self) -> float:
        """The limit it works at: while re-measuring the no-load latency, the one it
        holds back and returns to, not the low one it measures at."""
        return self._saved_limit if self._measuring else self.limit

    def rescale(self, target: float) -> None:
        """Move the operating point to `target`, decided elsewhere (several processes
        share one limit: another's governor changed it, or the number of processes did).
        What it learnt in units of the limit (where queueing began, the highest good
        limit) moves with it; the latency baselines stay."""
        factor = max(self.settings.min_limit, target) / self.target
        if self._measuring:
            self._saved_limit *= factor
        else:
            self.limit = min(self.settings.max_limit, self.limit * factor)
        self._good *= factor
        self._ssthresh *= factor

    # -- decisions --------------------------------------------------------------------

    def allowed(self, now: float) -> int:
        """How many exchanges may be in flight now, in total."""
        if self._together and now >= self._together_until:
            self._give_up_together(now)
        if now < self.paused_until:
            return 0
        held = self._breaker.allowed(now)
        return max(1, math.floor(self.limit)) if held is None else held

    def available(self, now: float) -> int:
        return max(0, self.allowed(now) - self.in_flight)

    def held_until(self) -> float:
        """Until when nothing is sent: the origin's `Retry-After`, an open breaker."""
        return max(self.paused_until, self._breaker.held_until())

    # -- events ---------------------------------------------------------------------------

    def started(self, now: float) -> None:
        self.in_flight += 1
        self._breaker.started()
        self._window.peak_in_flight = max(self._window.peak_in_flight, self.in_flight)

    def released(self) -> None:
        """An exchange ended for a reason that says nothing about the origin."""
        self.in_flight = max(0, self.in_flight - 1)

    def finished(
        self,
        now: float,
        latency: float | None,
        status: int | None,
        retry_after: float | None = None,
        kind: str = "",
    ) -> None:
        """An exchange ended: `status` None means no answer (refused, reset, timed out).
        `kind` groups exchanges whose latencies are comparable (the endpoint)."""
        self.in_flight = max(0, self.in_flight - 1)
        # In slow start, only exchanges that started inside the window count: while the
        # limit grows by half a round trip, one sent under the previous limit says little
        # about this one, and judged on those a slow start overshoots the knee by a step.
        # Not otherwise: with slow and fast endpoints mixed, a window would then hear
        # mostly the fast ones.
        fresh = self._first_climb() or self._together
        # Sent before a group measurement settled: neither a sample nor an overload of
        # its window (it would be judged on its overloads alone).
        stale = self._together and latency is not None and now - latency < self._window.started
        if retry_after is not None and (status in OVERLOAD_STATUS or status is None):
            self.paused_until = max(self.paused_until, now + retry_after)
        if status is None:
            self._breaker.failed(now)
            if not stale:
                self._window.overloads += 1
        else:
            # Any answer proves the origin is back, also one to live traffic while open.
            if self._breaker.answered():
                self.limit = max(self.settings.min_limit, self.limit / 2)
            overload = status in OVERLOAD_STATUS
            if overload and not stale:
                self._window.overloads += 1
            elif (
                not (overload or stale)
                and latency is not None
                and (not fresh or now - latency >= self._window.started)
            ):
                self._window.samples.append((kind, latency))
        if self._together and now >= self._together_until:
            self._give_up_together(now)
        else:
            self._maybe_close_window(now)

    # -- internals --------------------------------------------------------------------

    def _maybe_close_window(self, now: float) -> None:
        w = self._window
        s = self.settings
        climbing = self._first_climb()
        # In slow start a window is about two round trips: twice as many answers as the
        # limit, all to exchanges started inside it (in the first round a queue is still
        # building up); the limit grows per round trip, as TCP's does, not per `window`.
        enough = len(w.samples) >= max(s.min_samples, 2 * self.limit if climbing else 0)
        overloaded = w.overloaded(s)
        long_enough = now - w.started >= s.window or climbing
        if not (overloaded or (enough and long_enough)):
            return
        if overloaded:
            self.limit = max(s.min_limit, self.limit * s.backoff)
            if self._measuring:
                self._saved_limit = max(s.min_limit, self._saved_limit * s.backoff)
        elif self._measuring:
            if self._learn_baselines(w):
                # The origin got slower: the cuts since were taken for queueing that was
                # not, and what was learnt about its capacity no longer holds. Find it
                # again in slow start, from near where it was before the cuts.
                self._ssthresh = self._climb_floor = math.inf
                if s.resume_after_relearn:
                    self._saved_limit = max(self._saved_limit, self._good * RECLIMB)
            self._measuring = self._together = False
            self.limit = self._saved_limit
        else:
            self._adapt(w)
            if self._stuck_at_floor(w):
                self.remeasure_soon(now)  # below, at once
        self._window = Window(now, peak_in_flight=self.in_flight)
        if now >= self._next_remeasure and not self._measuring and not overloaded:
            self._start_measuring(now)

    def _first_climb(self) -> bool:
        """Slow start before any queueing was seen: finding the origin's capacity."""
        return self.limit < min(self._ssthresh, self.settings.max_limit) and not self._measuring

    def _slow_start(self) -> bool:
        s = self.settings
        return s.max_limit > self.limit and (
            self.limit < self._ssthresh or self.limit < self._good * RECLIMB
        )

    def _doubts_the_climb_ends(self, ratio: float, gradient: float) -> bool:
        """Whether to hold the limit for this window rather than end the first climb on
        it. Ending it is for good (from then on the limit grows by the gentle probe
        alone), so it takes `climb_exit_windows` in a row that read as queueing or as
        latency rising; one that does not resumes slow start, as HyStart++ (RFC 9406)
        does when the rounds after a delay increase are fast again. A window can be a
        handful of answers that met a stall in the gateway: taking in a burst of writes,
        it answered the first exchanges of a flood late, and the limit, cut at 8 where
        the origin had 16 workers, then took 6 s of a 10-s drain to grow back."""
        if not self._first_climb() or gradient < CLEAR_QUEUEING:
            self._doubts = 0
            return False
        floor = min(self._climb_floor, ratio)
        s = self.settings
        ends = gradient < 1.0 or ratio > max(1.0, floor + s.buffer * s.early_exit)
        self._doubts = self._doubts + 1 if ends else 0
        return 0 < self._doubts < s.climb_exit_windows

    def _adapt(self, w: Window) -> None:
        s = self.settings
        ratios: list[float] = []
        for kind, latencies in w.by_kind().items():
            typical = median(latencies)
            baseline = self.baselines.get(kind)
            # A kind seen for the first time, or an origin clearly faster than we knew. Not
            # from a handful of answers, and not for a dip within the noise: a baseline
            # only ever set lower would keep the luckiest of many draws.
            faster = baseline is None or typical * (1 + s.buffer) < baseline
            if faster and len(latencies) >= s.min_samples:
                self._set_baseline(kind, latencies)
            if kind not in self.baselines:
                continue  # not judged until measured
            bound = self.baselines[kind] + self.noise.get(kind, 0.0) + s.allowance
            ratios.extend(latency / bound for latency in latencies)
        if not ratios:
            return
        ratio = median(ratios)
        self.last_ratio = ratio
        gradient = min(1.0, max(0.5, (1 + s.buffer) / ratio))
        if self._doubts_the_climb_ends(ratio, gradient):
            return
        # Headroom only while latency is flat: growing past the knee would queue in the origin.
        # Until queueing was first seen, and far below a limit that was fine before (after
        # a cut, after the breaker), double instead, as TCP's slow start does.
        headroom = 0.0
        slow_start = self._slow_start()
        if gradient >= 1.0:
            self._good = max(self._good, self.limit)
            headroom = self.limit * s.slow_start if slow_start else math.sqrt(self.limit) * s.probe
        if slow_start:
            # Latency starts to rise as the limit grows (HyStart's signal): the knee is
            # near; from here on grow gently, before another step overshoots it. Against
            # the lowest ratio of this climb, not 1: a gateway or origin that is slow all
            # along (a busy machine) is not a queue building up. Yet not while still
            # below 1: a rise from one lucky window is noise.
            self._climb_floor = min(self._climb_floor, ratio)
            if ratio > max(1.0, self._climb_floor + s.buffer * s.early_exit):
                self._ssthresh = min(self._ssthresh, self.limit)
                headroom = 0.0
        target = self.limit * gradient + headroom
        if w.peak_in_flight < max(1, math.floor(self.limit)) * s.app_limited:
            target = min(target, self.limit)  # unused capacity says nothing about more
        new = (1 - s.smoothing) * self.limit + s.smoothing * target
        self.limit = min(s.max_limit, max(s.min_limit, new))
        if gradient < 1.0:
            self._ssthresh = self.limit  # the knee: from here on, grow gently
        if not self._slow_start():
            self._climb_floor = math.inf
