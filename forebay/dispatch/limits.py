"""How many deliveries may be in flight. A fixed number for now; the adaptive governor
implements the same protocol and replaces it without touching the dispatcher."""

from __future__ import annotations

from typing import Protocol


class ConcurrencyLimit(Protocol):
    def available(self) -> int:
        """How many more deliveries may start now."""

    def started(self) -> None: ...

    def finished(self, latency: float | None, status: int | None) -> None:
        """A delivery ended: its origin latency and status (None for a connection error)."""


class FixedLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def available(self) -> int:
        return max(0, self.limit - self.in_flight)

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, latency: float | None, status: int | None) -> None:
        self.in_flight -= 1
