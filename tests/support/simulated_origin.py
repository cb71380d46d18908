"""An origin whose capacity is physical, simulated: W workers, each request holding one
for S seconds (give or take 10%), the rest waiting in the origin's queue, first come
first served. For the governor's tests, which run on a simulated clock."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field


@dataclass
class WorkerPoolOrigin:
    workers: int
    service: float
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    # A share of requests slow whatever the load (a cold cache, a big account), and how
    # many times slower.
    tail: float = 0.0
    tail_factor: float = 10.0
    spread: float = 0.1  # each service time is S x U(1 - spread, 1 + spread)
    busy_until: list[float] = field(default_factory=list)

    def admit(self, now: float) -> float:
        """When a request arriving at `now` completes (FIFO over the workers)."""
        while len(self.busy_until) < self.workers:
            self.busy_until.append(now)
        start = max(now, heapq.heappop(self.busy_until))
        service = self.service * self.rng.uniform(1 - self.spread, 1 + self.spread)
        if self.tail and self.rng.random() < self.tail:
            service *= self.tail_factor
        done = start + service
        heapq.heappush(self.busy_until, done)
        return done

    @property
    def capacity(self) -> float:
        """Requests per second with every worker busy."""
        return self.workers / (self.service * (1 + self.tail * (self.tail_factor - 1)))
