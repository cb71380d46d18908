"""The governor's re-measurements of the origin's no-load latency (`governor.py` has the
rest of it): when one starts, alone or together with the processes that share a limit, at
what limit, when one is given up or brought forward, and what its window teaches."""

from __future__ import annotations

import math

from forebay.policy.governor_settings import GovernorSettings
from forebay.policy.latency_window import Window, median, median_error

# Windows in a row at the floor that still read as queueing before it re-measures early.
FLOOR_WINDOWS = 4


class Remeasuring:
    """Part of `Governor`, with the state it keeps on the governor."""

    settings: GovernorSettings
    limit: float
    in_flight: int
    baselines: dict[str, float]
    noise: dict[str, float]  # per kind, how far its baseline may be off
    last_ratio: float | None
    _window: Window
    _measuring: bool  # a measurement is under way
    _together: bool  # the whole group's
    _measure_raises: bool  # whether it may raise a baseline, decided when it starts
    _together_until: float
    _saved_limit: float  # the limit it returns to
    _jitter: float
    _next_remeasure: float
    _floor_windows: int  # in a row at the floor, still reading as queueing

    @property
    def min_rtt(self) -> float | None:
        """The no-load latency, for display: the median of the kinds' baselines."""
        if not self.baselines:
            return None
        return median(list(self.baselines.values()))

    @property
    def measuring_together(self) -> bool:
        """Re-measuring the no-load latency with the others sharing the limit."""
        return self._together

    def remeasure_together(self, now: float, raises: bool, within: float) -> bool:
        """Re-measure the no-load latency now, at half its limit (one exchange at least),
        as every process sharing the limit does at the same moment: the origin then holds
        half what the group found it can take, which queues nothing. Exchanges started
        before the group's earlier load has left the origin (two current latencies, at
        least a window) do not count. `raises`: whether the result may raise a baseline
        (the group's probes are at most half the shared limit; not so when one each is
        already more). A measurement not over in twice the time it needs, or in `within`
        seconds, is given up; none is started that could not be over in `within` (False),
        and one under way is not cut short to start another (False)."""
        s = self.settings
        probe = max(s.min_limit, self.limit / 2)  # half the group's limit, in all
        latency = (self.min_rtt or 0.0) * max(1.0, self.last_ratio or 1.0)
        settle = max(s.window, 2 * latency)
        needs = settle + max(s.window, 1.5 * s.min_samples * latency / max(1, math.floor(probe)))
        if self._measuring or needs > within:
            return False
        self._saved_limit = self.limit
        self._measuring = self._together = True
        self._measure_raises = raises
        # Twice what it needs at most: a process that had nothing to send when the group
        # measured would measure the others' load if it started much later.
        self._together_until = now + min(within, 2 * needs)
        self.limit = probe
        self._window = Window(now + settle)
        return True

    def remeasure_soon(self, now: float) -> None:
        """Re-measure alone, at `min_limit_probe`, once the current window is over (unless
        a measurement is under way)."""
        if not self._measuring:
            self._next_remeasure = now

    def remeasure_now(self, now: float) -> None:
        """Re-measure alone, at `min_limit_probe`, from now: what this window would hear
        is judged on a baseline that may no longer hold."""
        if not self._measuring:
            self._start_measuring(now)
            self._window = Window(now, peak_in_flight=self.in_flight)

    def _start_measuring(self, now: float) -> None:
        self._measuring = True
        self._measure_raises = self.settings.remeasure_raises
        self._saved_limit = self.limit
        self.limit = min(self.limit, self.settings.min_limit_probe)
        self._next_remeasure = now + self.settings.remeasure_every * self._jitter

    def _give_up_together(self, now: float) -> None:
        self._measuring = self._together = False
        self.limit = self._saved_limit
        self._window = Window(now, peak_in_flight=self.in_flight)

    def _set_baseline(self, kind: str, latencies: list[float]) -> None:
        """A window's median becomes `kind`'s no-load latency. Drawn from a few dozen
        answers at most, it may be off by a few percent, as much as `buffer`: latency is
        then judged against the baseline plus `baseline_noise` standard errors of it
        (`buffer` at most), so that a baseline drawn low does not read as queueing for
        good. Fewer than `min_samples` answers tell too little about their spread: they
        get the whole `buffer`."""
        s = self.settings
        self.baselines[kind] = baseline = median(latencies)
        error = median_error(latencies) if len(latencies) >= s.min_samples else math.inf
        # At most `buffer` more: a few slow answers among 8 widen the quartiles a lot.
        self.noise[kind] = min(s.buffer * baseline, s.baseline_noise * error)

    def _learn_baselines(self, w: Window) -> bool:
        """A measurement's window is over: its medians become the baselines (only lower
        ones unless it may raise them). True when one rose by more than `buffer`: the
        origin got slower. The window closes at `min_samples` answers in all, so with
        several kinds one may have only a few: those set a baseline only where none is
        known; a known one stays. And where a baseline may only fall, it falls only for
        a median more than `buffer` lower, or it would keep the luckiest of many draws."""
        s, rose = self.settings, False
        for kind, latencies in w.by_kind().items():
            measured, known = median(latencies), self.baselines.get(kind)
            if known is not None:
                if len(latencies) < s.min_samples:
                    continue
                if self._measure_raises:
                    rose = rose or measured > known * (1 + s.buffer)
                elif measured * (1 + s.buffer) >= known:
                    continue
            self._set_baseline(kind, latencies)
        return rose

    def _stuck_at_floor(self, w: Window) -> bool:
        """Cut to the floor, and latency still reads as queueing window after window: with
        next to nothing in flight that is no queue but an origin that got slower (a
        deploy), and the periodic re-measurement may be half a minute away. Not while a
        baseline may not rise (processes that share a limit: unless the whole group is at
        its floor), since a re-measurement then could not mend it."""
        s = self.settings
        at_floor = self.limit <= s.min_limit_probe and w.peak_in_flight <= s.min_limit_probe
        if at_floor and s.remeasure_raises and (self.last_ratio or 0.0) > 1 + s.buffer:
            self._floor_windows += 1
        else:
            self._floor_windows = 0
        if self._floor_windows < FLOOR_WINDOWS:
            return False
        self._floor_windows = 0
        return True
