"""How long a connection may keep the gateway waiting, and one timer that enforces it.

A connection is always in one phase: idle between requests (the keep-alive timeout),
reading a request's headers (the header timeout: a slow-loris client sending a byte at
a time is cut off), reading its body (the body timeout, counted from the last bytes
received, and not while the gateway itself has paused reading), or busy with the
gateway's own work (no limit here: the origin's timeouts apply). One timer per
connection re-arms itself for the current phase's deadline, so a request costs no timer
of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # first byte of a request to the end of its headers
    body_timeout: float = 30.0  # silence allowed while a request body is being read
    max_connections: int | None = None  # open connections per process; past it, 503


class Phase(Enum):
    IDLE = "idle"
    HEADERS = "headers"
    BODY = "body"
    BUSY = "busy"


class ConnectionDeadline:
    __slots__ = (
        "_limits",
        "_loop",
        "_on_expiry",
        "_timer",
        "_timer_at",
        "keep_alive",
        "paused",
        "phase",
        "since",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: ConnectionLimits,
        keep_alive: float,
        on_expiry: Callable[[Phase], None],
    ) -> None:
        self._loop = loop
        self._limits = limits
        self.keep_alive = keep_alive
        self._on_expiry = on_expiry
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when the armed timer fires (loop time)
        self.phase = Phase.BUSY
        self.since = 0.0
        self.paused = False  # the gateway stopped reading: the client is not to blame

    def enter(self, phase: Phase) -> None:
        self.phase = phase
        self.since = now = self._loop.time()
        if phase is Phase.BUSY:
            return
        due = now + self._allowed(phase)
        # A timer already armed for later serves; re-arm only for a nearer deadline (a
        # header timeout shorter than the keep-alive timeout, say).
        if self._timer is None or due < self._timer_at:
            self._arm(due - now)

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._loop.time() + delay
        self._timer = self._loop.call_later(delay, self._check)

    def touch(self) -> None:
        """Bytes arrived: the body timeout counts from now."""
        self.since = self._loop.time()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _allowed(self, phase: Phase) -> float:
        if phase is Phase.IDLE:
            return self.keep_alive
        if phase is Phase.HEADERS:
            return self._limits.header_timeout
        return self._limits.body_timeout

    def _check(self) -> None:
        self._timer = None
        phase = self.phase
        if phase is Phase.BUSY:
            return
        left = self.since + self._allowed(phase) - self._loop.time()
        if phase is Phase.BODY and self.paused:
            left = self._allowed(phase)
        if left <= 0:
            self._on_expiry(phase)
        else:
            self._arm(left)
