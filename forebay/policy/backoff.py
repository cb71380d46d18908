"""Which delivery failures are retried, and when the next attempt is due.

Exponential backoff with full jitter (each delay drawn uniformly from zero to the
capped exponential), as in the AWS architecture blog's analysis: it spreads retries
of many clients best. An origin's `Retry-After` is a floor under the drawn delay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 10
    max_age: float = 24 * 3600.0
    base: float = 0.5
    cap: float = 300.0


def classify(status: int | None) -> Outcome:
    """The outcome of one attempt: `None` is a connection error or timeout."""
    if status is None or status in RETRYABLE_STATUS:
        return Outcome.RETRY
    if status < 400:
        return Outcome.SUCCEEDED
    return Outcome.FAILED


def backoff_delay(attempt: int, policy: RetryPolicy, uniform: Callable[[float], float]) -> float:
    """Seconds to wait after attempt number `attempt` (1-based) failed.

    `uniform(x)` returns a number in [0, x]; pass `random.Random().uniform` bound to 0.
    """
    ceiling = min(policy.cap, policy.base * 2.0 ** min(attempt - 1, 60))
    return uniform(ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which float() refuses
        return float(value)
    try:
        when: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def decide(
    status: int | None,
    attempts: int,
    accepted_at: float,
    now: float,
    policy: RetryPolicy,
    uniform: Callable[[float], float],
    retry_after: float | None = None,
) -> tuple[Outcome, float | None]:
    """After attempt number `attempts` ended with `status`: the outcome, and for a retry
    the time the next attempt is due. Retries past the attempt or age limit are dead."""
    outcome = classify(status)
    if outcome is not Outcome.RETRY:
        return outcome, None
    delay = backoff_delay(attempts, policy, uniform)
    if retry_after is not None:
        delay = max(delay, retry_after)
    due = now + delay
    if attempts >= policy.max_attempts or due - accepted_at > policy.max_age:
        return Outcome.DEAD, None
    return Outcome.RETRY, due
