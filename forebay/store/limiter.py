"""Rate-limit counters behind one protocol: in this process's memory, or in Redis shared
by every instance (`store/redis_limiter.py`). Both run the GCRA of `policy/gcra.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from forebay.policy.gcra import Decision, Limit, decide_all


class LimiterUnavailable(Exception):
    """The shared counters cannot be reached; the caller fails open or closed."""


class Limiter(Protocol):
    async def acquire(self, checks: Sequence[tuple[str, Limit]], now: float) -> list[Decision]:
        """Count one request against every (key, limit), atomically: either all admit it
        and all are charged, or none is. One decision per check, in order."""

    async def close(self) -> None: ...


class MemoryLimiter:
    """Counters of one process. A TAT in the past is a full bucket, so old keys are
    dropped whenever the table grows past `max_keys`."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.tats: dict[str, float] = {}
        self.max_keys = max_keys

    async def acquire(self, checks: Sequence[tuple[str, Limit]], now: float) -> list[Decision]:
        tats = self.tats
        allowed, decisions = decide_all([(limit, tats.get(key)) for key, limit in checks], now)
        if allowed:
            for (key, _), d in zip(checks, decisions, strict=True):
                tats[key] = d.tat
            if len(tats) > self.max_keys:
                self._prune(now)
        return decisions

    def _prune(self, now: float) -> None:
        self.tats = {k: t for k, t in self.tats.items() if t > now}
        if len(self.tats) > self.max_keys:  # all busy: forget the half nearest to full
            keep = sorted(self.tats.items(), key=lambda kv: kv[1])[len(self.tats) // 2 :]
            self.tats = dict(keep)

    async def close(self) -> None:
        pass
