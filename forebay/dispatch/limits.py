"""How many deliveries may be in flight: a fixed number, or the adaptive governor shared
with live traffic. Both implement one protocol, so the dispatcher does not know which."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Protocol

from forebay.policy.governor import Breaker, Governor, GovernorSettings


class ConcurrencyLimit(Protocol):
    def available(self) -> int:
        """How many more deliveries may start now."""

    def allowed(self) -> int:
        """How many may be in flight now, in all (0 while sending is paused)."""

    def started(self) -> None: ...

    def released(self) -> None:
        """An exchange ended for reasons of its own (the client's), not the origin's."""

    def finished(
        self,
        latency: float | None,
        status: int | None,
        retry_after: float | None = None,
        kind: str = "",
    ) -> None:
        """A delivery ended: its origin latency and status (None for a connection error),
        the origin's Retry-After, if it sent one, and the kind of exchange (its endpoint),
        whose latencies are comparable."""


class FixedLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def available(self) -> int:
        return max(0, self.limit - self.in_flight)

    def allowed(self) -> int:
        return self.limit

    def started(self) -> None:
        self.in_flight += 1

    def released(self) -> None:
        self.in_flight -= 1

    def finished(
        self,
        latency: float | None,
        status: int | None,
        retry_after: float | None = None,
        kind: str = "",
    ) -> None:
        self.in_flight -= 1


class LoopLag:
    """How late this process's event loop runs what is due: a timer every few
    milliseconds measures it, averaged.

    An exchange's latency is measured here, in the gateway, and includes the time the
    loop took to get round to its answer. While the gateway is busy (taking in a burst
    of writes) that is several milliseconds per exchange, which the governor would read
    as the origin queueing and cut for, leaving the origin idle just when there is most
    to send. Taking it off leaves the origin's own latency.
    """

    PERIOD = 0.005
    WEIGHT = 0.1  # of each new measure in the average: about the last 50 ms

    def __init__(self) -> None:
        self.lag = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0

    def watch(self) -> None:
        """Start measuring on the running loop, if not yet."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            self._loop = loop
            self._due = loop.time() + self.PERIOD
            loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop or loop.is_closed():
            return
        now = loop.time()
        self.lag += self.WEIGHT * (max(0.0, now - self._due) - self.lag)
        self._due = now + self.PERIOD
        loop.call_at(self._due, self._tick, loop)


class OriginGovernor:
    """The one governor per origin, shared by live traffic and the dispatcher.

    Live requests are never held back: they are counted as in flight and their latencies
    feed the governor, so the dispatcher, which asks `available()`, only uses what live
    traffic leaves.
    """

    def __init__(
        self, settings: GovernorSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.governor = Governor(settings, clock(), jitter=random.uniform(0.75, 1.25))
        self.loop_lag = LoopLag()

    def available(self) -> int:
        return self.governor.available(self.clock())

    def allowed(self) -> int:
        return self.governor.allowed(self.clock())

    def started(self) -> None:
        self.loop_lag.watch()
        self.governor.started(self.clock())

    def released(self) -> None:
        self.governor.released()

    def breaker_holds(self) -> bool:
        """Whether the breaker keeps requests from the origin now."""
        g = self.governor
        # allowed() moves an open breaker to half-open once its cool-down is over, so a
        # stale answer then lets one request through as the probe.
        return g.breaker is not Breaker.CLOSED and g.allowed(self.clock()) == 0

    def finished(
        self,
        latency: float | None,
        status: int | None,
        retry_after: float | None = None,
        kind: str = "",
    ) -> None:
        if latency is not None:  # the origin's part; never less than half of what was seen
            latency = max(latency / 2, latency - self.loop_lag.lag)
        self.governor.finished(self.clock(), latency, status, retry_after, kind)
