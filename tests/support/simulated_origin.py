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
    busy_until: list[float] = field(default_factory=list)

    def admit(self, now: float) -> float:
        """When a request arriving at `now` completes (FIFO over the workers)."""
        while len(self.busy_until) < self.workers:
            self.busy_until.append(now)
        start = max(now, heapq.heappop(self.busy_until))
        done = start + self.service * self.rng.uniform(0.9, 1.1)
        heapq.heappush(self.busy_until, done)
        return done
