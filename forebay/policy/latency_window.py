"""What the governor hears in one window: the latencies of answered exchanges by kind,
the peak in flight, and the overload signals; and the median it judges them by."""

from __future__ import annotations

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
