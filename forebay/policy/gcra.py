"""Rate limits by the generic cell rate algorithm (GCRA), as pure functions.

A limit of `count` requests per `period` seconds with a `burst` admits one request every
`emission = period / count` seconds on average, and up to `burst` at once after a quiet
spell. The whole state of a limit is one number per key, the theoretical arrival time
(TAT): when the bucket would be empty again if no more requests came. A request at `now`
is admitted when `max(tat, now) + emission - now <= burst * emission`; the TAT then
moves on by one emission interval. Nothing else is stored, nothing is swept by a timer,
and a stored TAT in the past means a full bucket, so keys may simply expire.

Several limits may apply to one request (per consumer, per endpoint, per consumer and
endpoint): it is admitted only when every one admits it, and a refused request consumes
nothing from any of them (`decide_all`).

The Redis limiter runs the same arithmetic in one Lua script (`store/redis_limiter.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*(?:burst\s+(\d+)\s*)?\Z")


@dataclass(frozen=True, slots=True)
class Limit:
    """`count` requests per `period` seconds, up to `burst` at once."""

    count: int
    period: float
    burst: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.period <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs count >= 1, period > 0 and burst >= 1")

    @property
    def emission(self) -> float:
        """Seconds between requests at the sustained rate."""
        return self.period / self.count

    @property
    def tolerance(self) -> float:
        """How far ahead of now the TAT may run: the whole burst."""
        return self.burst * self.emission

    @property
    def window(self) -> float:
        """Seconds an empty bucket takes to fill again: the `w` of `RateLimit-Policy`."""
        return self.tolerance

    def describe(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(self.period)
        rate = f"{self.count}/{unit}" if unit else f"{self.count}/{self.period:g}s"
        return rate if self.burst == self.count else f"{rate} burst {self.burst}"


def parse_rate(text: str, burst: int | None = None) -> Limit:
    """`"100/s"`, `"20/m"`, `"1000/h"`, `"100/s burst 300"` -> a `Limit`.

    The burst is, in order: the one in the text, the `burst` argument, or one period's
    worth of requests (so `"100/m"` lets a client send 100 at once, then 1 every 0.6 s).
    Raises ValueError naming the problem."""
    m = _RATE.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a rate such as '100/s', '20/m' or '1000/h' (optionally "
            "followed by 'burst N')"
        )
    count = int(m.group(1))
    period = PERIODS[m.group(2)[0]]
    chosen = int(m.group(3)) if m.group(3) else burst if burst is not None else count
    return Limit(count, period, chosen)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tat: float  # the TAT to store when the request is admitted; the old one otherwise
    remaining: int  # requests that may follow at once
    retry_after: float  # seconds until a request would be admitted (0 when allowed)
    reset_after: float  # seconds until the bucket is full again


def decide(limit: Limit, tat: float | None, now: float) -> Decision:
    """Whether one request at `now` is admitted, given the key's stored TAT (None: never
    seen, or expired)."""
    emission = limit.emission
    tolerance = limit.tolerance
    base = now if tat is None or tat < now else tat
    new_tat = base + emission
    ahead = new_tat - now  # how far the bucket is drained once this request is counted
    if ahead > tolerance + 1e-9:
        # Only a TAT ahead of now can refuse (burst >= 1), so `base` is the stored TAT,
        # which stays as it is.
        return Decision(False, base, 0, ahead - tolerance, base - now)
    remaining = math.floor((tolerance - ahead) / emission + 1e-9)
    return Decision(True, new_tat, remaining, 0.0, ahead)


def decide_all(
    checks: Sequence[tuple[Limit, float | None]], now: float
) -> tuple[bool, list[Decision]]:
    """Every limit's decision; admitted only if all admit. When one refuses, the caller
    stores nothing, so a refused request costs no limit anything."""
    decisions = [decide(limit, tat, now) for limit, tat in checks]
    return all(d.allowed for d in decisions), decisions


def retry_after_seconds(decisions: Sequence[Decision]) -> int:
    """`Retry-After` for a refusal: whole seconds, rounded up, at least 1."""
    wait = max((d.retry_after for d in decisions if not d.allowed), default=0.0)
    return max(1, math.ceil(wait - 1e-9))


def policy_item(name: str, limit: Limit) -> str:
    """One member of `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers):
    quota `q` requests in a window of `w` seconds."""
    return f'"{name}";q={limit.burst};w={max(1, math.ceil(limit.window - 1e-9))}'


def state_item(name: str, decision: Decision) -> str:
    """One member of `RateLimit`: `r` requests remaining, `t` seconds until the quota is
    whole again."""
    return f'"{name}";r={decision.remaining};t={max(0, math.ceil(decision.reset_after - 1e-9))}'
