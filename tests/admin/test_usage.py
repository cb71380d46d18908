"""Per-consumer usage counts: the rings' windows, slot reuse and forgetting consumers."""

from __future__ import annotations

from forebay.admin.usage import ConsumerUsage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_windows_count_requests_and_refusals() -> None:
    clock = Clock()
    usage = ConsumerUsage(clock)
    for status in (200, 200, 429, 403, 500):
        usage.record("acme", status, clock.now)
    got = usage.of("acme")
    assert got.last_minute.model_dump() == {"requests": 5, "rate_limited": 1, "forbidden": 1}
    assert got.last_hour == got.last_minute
    assert usage.of("nobody").last_hour.requests == 0


def test_old_requests_leave_the_minute_then_the_hour() -> None:
    clock = Clock()
    usage = ConsumerUsage(clock)
    usage.record("acme", 200, clock.now)
    clock.now += 65
    usage.record("acme", 429, clock.now)
    got = usage.of("acme")
    assert (got.last_minute.requests, got.last_minute.rate_limited) == (1, 1)
    assert got.last_hour.requests == 2
    clock.now += 3600
    assert usage.of("acme").last_hour.requests == 0
    # A slot reused for a new period starts from zero.
    usage.record("acme", 200, clock.now)
    assert usage.of("acme").last_hour.requests == 1


def test_retain_forgets_consumers_that_are_gone() -> None:
    clock = Clock()
    usage = ConsumerUsage(clock)
    usage.record("acme", 200, clock.now)
    usage.record("gone", 200, clock.now)
    usage.retain({"acme"})
    assert usage.of("gone").last_hour.requests == 0
    assert usage.of("acme").last_hour.requests == 1
