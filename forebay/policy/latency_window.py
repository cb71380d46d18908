"""What the governor hears in one window: the latencies of answered exchanges by kind,
the peak in flight, and the overload signals; and the median it judges them by."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forebay.policy.governor import GovernorSettings


@dataclass(slots=True)
class Window:
    started: float
    samples: list[tuple[str, float]] = field(default_factory=list)
    peak_in_flight: int = 0
    overloads: int = 0  # 429, 503, timeouts and failures without an answer

    def overloaded(self, settings: GovernorSettings) -> bool:
        """A share of the window's answers, not a single one: a request that keeps
        failing with 503 (one bad lane) must not throttle the whole origin."""
        answers = len(self.samples) + self.overloads
        return self.overloads >= max(settings.min_overloads, settings.overload_share * answers)

    def by_kind(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for kind, latency in self.samples:
            out.setdefault(kind, []).append(latency)
        return out


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def median_error(values: list[float]) -> float:
    """The standard error of the median of `values`: sqrt(pi / 2) x sd / sqrt(n), with
    the spread estimated from the interquartile range (sd = IQR / 1.349 for a normal
    distribution), so that one slow answer in ten does not count as spread. The upper
    quartile is taken one place out (the 7th of 8 rather than the 6th), which for a few
    answers makes up for how small samples understate the spread (the 7th and 3rd of 8
    uniform draws give 0.98 of the true error on average). How far a median of that
    many draws lands from the true one, typically."""
    n = len(values)
    if n < 4:
        return 0.0
    ordered = sorted(values)
    spread = (ordered[(3 * n) // 4] - ordered[n // 4]) / 1.349
    return math.sqrt(math.pi / 2) * spread / math.sqrt(n)
