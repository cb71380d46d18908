"""Per-consumer usage, counted in the process that serves the requests.

For each consumer that has made a request: how many in the last minute and the last
hour, and how many of them were refused with 429 (a rate limit) or 403 (an endpoint the
consumer may not call). Counts live in two small rings per consumer, twelve 5-second
slots and sixty 1-minute slots, each slot stamped with the period it counts; a slot is
zeroed when a request lands in it for a new period, so nothing is swept by a timer and
an idle consumer costs nothing. The last minute is exact to within 5 seconds, the last
hour to within a minute.

Recording is a dictionary lookup and a few integer operations, done only for requests
made with a consumer's key. The table holds only consumers that exist: a request names
a consumer from the current keyring, and the admin API drops the entries of consumers
that are gone whenever it lists them. With several workers each worker process has its
own table, which the admin process cannot see.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

FINE = 5.0  # seconds per slot of the minute ring
FINE_SLOTS = 12
COARSE = 60.0  # seconds per slot of the hour ring
COARSE_SLOTS = 60
# A backstop for the table's size; consumers beyond it are not counted.
MAX_TRACKED = 10_000


class Window(BaseModel):
    requests: int = Field(description="Requests made with this consumer's keys.")
    rate_limited: int = Field(description="Of those, refused with 429 by a rate limit.")
    forbidden: int = Field(description="Of those, refused with 403: an endpoint not allowed.")


class Usage(BaseModel):
    last_minute: Window = Field(description="The last 60 seconds, to within 5 seconds.")
    last_hour: Window = Field(description="The last 60 minutes, to within a minute.")


class _Ring:
    """Slots of `[period, requests, rate_limited, forbidden]`."""

    __slots__ = ("length", "slots", "span")

    def __init__(self, span: float, length: int) -> None:
        self.span = span
        self.length = length
        self.slots = [[-1, 0, 0, 0] for _ in range(length)]

    def add(self, now: float, status: int) -> None:
        period = int(now // self.span)
        slot = self.slots[period % self.length]
        if slot[0] != period:
            slot[0], slot[1], slot[2], slot[3] = period, 0, 0, 0
        slot[1] += 1
        if status == 429:
            slot[2] += 1
        elif status == 403:
            slot[3] += 1

    def window(self, now: float) -> Window:
        current = int(now // self.span)
        totals = [0, 0, 0]
        for period, requests, limited, forbidden in self.slots:
            if current - self.length < period <= current:
                totals[0] += requests
                totals[1] += limited
                totals[2] += forbidden
        return Window(requests=totals[0], rate_limited=totals[1], forbidden=totals[2])


class ConsumerUsage:
    def __init__(self, clock: object = time.perf_counter) -> None:
        self._clock = clock
        self._table: dict[str, tuple[_Ring, _Ring]] = {}

    def now(self) -> float:
        return self._clock()  # type: ignore[operator, no-any-return]

    def record(self, consumer: str, status: int, now: float) -> None:
        """One finished exchange; `now` on this object's clock (perf_counter by default)."""
        rings = self._table.get(consumer)
        if rings is None:
            if len(self._table) >= MAX_TRACKED:
                return
            rings = self._table[consumer] = (_Ring(FINE, FINE_SLOTS), _Ring(COARSE, COARSE_SLOTS))
        rings[0].add(now, status)
        rings[1].add(now, status)

    def of(self, consumer: str) -> Usage:
        now = self.now()
        rings = self._table.get(consumer)
        if rings is None:
            empty = Window(requests=0, rate_limited=0, forbidden=0)
            return Usage(last_minute=empty, last_hour=empty)
        return Usage(last_minute=rings[0].window(now), last_hour=rings[1].window(now))

    def retain(self, names: set[str]) -> None:
        """Forget consumers that no longer exist."""
        for gone in [n for n in self._table if n not in names]:
            del self._table[gone]


# One per process: the data plane records into it, the admin API reads it (both run in
# the same process unless there are several workers).
USAGE = ConsumerUsage()
