from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.backoff import (
    Outcome,
    RetryPolicy,
    backoff_delay,
    classify,
    decide,
    parse_retry_after,
)

POLICY = RetryPolicy(max_attempts=10, max_age=3600.0, base=0.5, cap=300.0)


def highest(x: float) -> float:
    return x


def lowest(x: float) -> float:
    return 0.0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, Outcome.RETRY),
        (200, Outcome.SUCCEEDED),
        (201, Outcome.SUCCEEDED),
        (202, Outcome.SUCCEEDED),
        (204, Outcome.SUCCEEDED),
        (301, Outcome.SUCCEEDED),
        (304, Outcome.SUCCEEDED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (403, Outcome.FAILED),
        (404, Outcome.FAILED),
        (409, Outcome.FAILED),
        (422, Outcome.FAILED),
        (408, Outcome.RETRY),
        (425, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (501, Outcome.FAILED),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (505, Outcome.FAILED),
    ],
)
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) == outcome


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (9, 128.0), (10, 256.0), (11, 300.0), (10_000, 300.0)],
)
def test_backoff_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    asked: list[float] = []

    def uniform(x: float) -> float:
        asked.append(x)
        return x

    assert backoff_delay(attempt, POLICY, uniform) == ceiling
    assert asked == [ceiling]
    assert backoff_delay(attempt, POLICY, lowest) == 0.0


@given(
    attempt=st.integers(1, 10_000),
    base=st.floats(0.001, 10.0),
    cap=st.floats(0.0, 10_000.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_within_bounds(attempt: int, base: float, cap: float, seed: int) -> None:
    policy = RetryPolicy(base=base, cap=cap)
    rng = random.Random(seed)
    delay = backoff_delay(attempt, policy, lambda x: rng.uniform(0, x))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(attempt - 1, 60))


def test_retry_after_is_a_floor_under_the_drawn_delay() -> None:
    assert decide(503, 1, 0.0, 100.0, POLICY, lowest, retry_after=20.0) == (Outcome.RETRY, 120.0)
    # A drawn delay longer than Retry-After stands.
    assert decide(503, 3, 0.0, 100.0, POLICY, highest, retry_after=1.0) == (Outcome.RETRY, 102.0)
    assert decide(None, 1, 0.0, 100.0, POLICY, highest) == (Outcome.RETRY, 100.5)


@pytest.mark.parametrize(
    ("status", "attempts", "now", "expected"),
    [
        (503, 9, 100.0, (Outcome.RETRY, 100.0 + 128.0)),
        (503, 10, 100.0, (Outcome.DEAD, None)),  # the last attempt allowed failed
        (503, 11, 100.0, (Outcome.DEAD, None)),
        (None, 10, 100.0, (Outcome.DEAD, None)),
        (503, 1, 3599.5, (Outcome.RETRY, 3600.0)),  # due exactly at max_age: still in
        (503, 1, 3599.6, (Outcome.DEAD, None)),  # due past max_age
        (200, 10, 9999.0, (Outcome.SUCCEEDED, None)),
        (404, 10, 9999.0, (Outcome.FAILED, None)),
        (404, 1, 100.0, (Outcome.FAILED, None)),
    ],
)
def test_decide(
    status: int | None, attempts: int, now: float, expected: tuple[Outcome, float | None]
) -> None:
    assert decide(status, attempts, 0.0, now, POLICY, highest) == expected


def test_a_retry_after_past_max_age_is_dead() -> None:
    assert decide(429, 1, 0.0, 10.0, POLICY, lowest, retry_after=3600.0) == (Outcome.DEAD, None)


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone far from UTC, so a date read as local time shows."""
    monkeypatch.setenv("TZ", "EST+05EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


DATE = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()


@pytest.mark.usefixtures("local_time_not_utc")
@pytest.mark.parametrize(
    ("value", "now", "seconds"),
    [
        ("120", 0.0, 120.0),
        (" 7 ", 0.0, 7.0),
        ("0", 0.0, 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", DATE - 30, 30.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", DATE + 30, 0.0),  # in the past: now
        ("Wednesday, 21-Oct-15 07:28:00 GMT", DATE - 45, 45.0),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", DATE - 60, 60.0),  # asctime: no zone, still GMT
        ("Wed, 21 Oct 2015 07:28:00 -0000", DATE - 5, 5.0),
        (None, 0.0, None),
        ("", 0.0, None),
        ("soon", 0.0, None),
        ("-5", 0.0, None),
        ("1.5", 0.0, None),
        ("²", 0.0, None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", 0.0, None),
    ],
)
def test_parse_retry_after(value: str | None, now: float, seconds: float | None) -> None:
    assert parse_retry_after(value, now) == seconds


@given(st.text(max_size=60), st.floats(0, 4e9))
def test_parse_retry_after_never_raises(value: str, now: float) -> None:
    seconds = parse_retry_after(value, now)
    assert seconds is None or seconds >= 0.0
