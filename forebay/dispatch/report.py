"""The governor made visible: its metrics, refreshed every second, and a log line when
its limit moves by more than a quarter or its breaker changes state."""

from __future__ import annotations

import structlog

from forebay.admin import metrics
from forebay.dispatch.limits import ConcurrencyLimit, OriginGovernor
from forebay.dispatch.sharing import SharedGovernor
from forebay.policy.governor import Breaker

log = structlog.get_logger("forebay")


class GovernorReport:
    def __init__(self) -> None:
        self._logged: float | None = None
        self._breaker: Breaker | None = None

    def observe(self, limit: ConcurrencyLimit) -> None:
        if not isinstance(limit, OriginGovernor):
            metrics.ORIGIN_INFLIGHT.set(getattr(limit, "in_flight", 0))
            return
        g = limit.governor
        if isinstance(limit, SharedGovernor) and limit.share is not None:
            metrics.GOVERNOR_LIMIT.set(limit.share.slots)
            metrics.GOVERNOR_SHARED_LIMIT.set(limit.share.limit)
            metrics.GOVERNOR_MEMBERS.set(limit.share.members)
        else:
            metrics.GOVERNOR_LIMIT.set(g.limit)
        metrics.ORIGIN_INFLIGHT.set(g.in_flight)
        metrics.BREAKER_OPEN.set({"closed": 0, "half_open": 1, "open": 2}[g.breaker.value])
        if g.min_rtt is not None:
            metrics.ORIGIN_MIN_RTT.set(g.min_rtt)
        logged = self._logged
        if logged is None or abs(g.limit - logged) > 0.25 * logged or g.breaker != self._breaker:
            log.info(
                "governor",
                limit=round(g.limit, 1),
                in_flight=g.in_flight,
                min_rtt_ms=g.min_rtt and round(g.min_rtt * 1000, 2),
                latency_ratio=g.last_ratio and round(g.last_ratio, 2),
                breaker=g.breaker.value,
            )
            self._logged, self._breaker = g.limit, g.breaker
