"""The governor's circuit breaker (the governor is `governor.py`).

After `failures` consecutive exchanges without an answer (refused, reset, timed out) the
origin is taken to be down: nothing is sent until a cool-down is over; then one probe
goes through (half-open). An answer to it closes the breaker; its failure opens it again
for twice the cool-down, up to `max_cooldown`. Any answer closes it, also one to live
traffic while it is open: the origin is back, whoever found out. No I/O, no clock of its
own: every call that needs the time takes `now`.
"""

from __future__ import annotations

import math
from enum import StrEnum


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float, max_cooldown: float) -> None:
        self.state = Breaker.CLOSED
        self._threshold = failures
        self._first_cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._failures = 0  # in a row
        self._cooldown = cooldown
        self._open_until = 0.0
        self._probe_in_flight = False

    def allowed(self, now: float) -> int | None:
        """How many exchanges the breaker lets be in flight: none while open, the one
        probe while half-open, None (no bound of its own) while closed."""
        if self.state is Breaker.OPEN:
            if now < self._open_until:
                return 0
            self.state = Breaker.HALF_OPEN
        if self.state is Breaker.HALF_OPEN:
            return 0 if self._probe_in_flight else 1
        return None

    def held_until(self) -> float:
        """Until when nothing is sent (-inf when nothing is held)."""
        return self._open_until if self.state is Breaker.OPEN else -math.inf

    def started(self) -> None:
        if self.state is Breaker.HALF_OPEN:
            self._probe_in_flight = True

    def failed(self, now: float) -> None:
        """An exchange got no answer."""
        self._failures += 1
        if self.state is Breaker.HALF_OPEN:
            self._probe_in_flight = False
            self._cooldown = min(self._cooldown * 2, self._max_cooldown)
            self._open(now)
        elif self._failures >= self._threshold and self.state is Breaker.CLOSED:
            self._open(now)

    def answered(self) -> bool:
        """An exchange got an answer: True when that closed the breaker."""
        self._failures = 0
        if self.state is Breaker.CLOSED:
            return False
        self.state = Breaker.CLOSED
        self._probe_in_flight = False
        self._cooldown = self._first_cooldown
        return True

    def _open(self, now: float) -> None:
        self.state = Breaker.OPEN
        self._open_until = now + self._cooldown
