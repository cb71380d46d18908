"""The per-connection deadline, on a hand-driven clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from forebay.http.deadlines import ConnectionDeadline, ConnectionLimits, Phase

LIMITS = ConnectionLimits(header_timeout=10, body_timeout=30)
KEEP_ALIVE = 5.0


class Timer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """Just what the deadline uses of an event loop: time() and call_later()."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while due := [t for t in self.timers if not t.cancelled and t.when <= self.now]:
            for t in due:
                self.timers.remove(t)
                t.callback()

    def armed(self) -> int:
        return sum(not t.cancelled for t in self.timers)


@pytest.fixture
def clock() -> tuple[ManualLoop, ConnectionDeadline, list[Phase]]:
    loop = ManualLoop()
    expired: list[Phase] = []
    deadline = ConnectionDeadline(loop, LIMITS, KEEP_ALIVE, expired.append)  # type: ignore[arg-type]
    return loop, deadline, expired


Clock = tuple[ManualLoop, ConnectionDeadline, list[Phase]]


@pytest.mark.parametrize(
    ("phase", "allowed"),
    [(Phase.IDLE, KEEP_ALIVE), (Phase.HEADERS, 10.0), (Phase.BODY, 30.0)],
)
def test_each_phase_expires_after_its_own_limit(clock: Clock, phase: Phase, allowed: float) -> None:
    loop, deadline, expired = clock
    deadline.enter(phase)
    loop.advance(allowed - 0.01)
    assert expired == []
    loop.advance(0.02)
    assert expired == [phase]


def test_busy_never_expires(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.HEADERS)
    deadline.enter(Phase.BUSY)
    loop.advance(3600)
    assert expired == [] and loop.armed() == 0


def test_body_bytes_push_the_deadline_back(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.BODY)
    for _ in range(10):
        loop.advance(20)
        deadline.touch()
    assert expired == []
    loop.advance(30.01)
    assert expired == [Phase.BODY]


def test_paused_reading_is_not_the_clients_fault(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.BODY)
    deadline.paused = True
    loop.advance(600)
    assert expired == []
    deadline.paused = False
    deadline.touch()
    loop.advance(30.01)
    assert expired == [Phase.BODY]


def test_many_requests_share_one_timer(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.IDLE)
    for _ in range(1000):
        for phase in (Phase.HEADERS, Phase.BODY, Phase.BUSY, Phase.IDLE):
            deadline.enter(phase)
        loop.advance(0.001)
    assert len(loop.timers) == 1 and expired == []


def test_a_later_phase_is_judged_by_its_own_limit(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.IDLE)  # the timer is armed for the keep-alive timeout
    loop.advance(4)
    deadline.enter(Phase.HEADERS)  # a request starts: 10 s from now, not 1 s
    loop.advance(9.9)
    assert expired == []
    loop.advance(0.2)
    assert expired == [Phase.HEADERS]


def test_cancel_stops_the_timer(clock: Clock) -> None:
    loop, deadline, expired = clock
    deadline.enter(Phase.HEADERS)
    deadline.cancel()
    loop.advance(100)
    assert expired == []


def test_a_nearer_deadline_is_not_held_up_by_a_timer_armed_for_later() -> None:
    loop = ManualLoop()
    expired: list[Phase] = []
    limits = ConnectionLimits(header_timeout=1, body_timeout=30)
    deadline = ConnectionDeadline(loop, limits, KEEP_ALIVE, expired.append)  # type: ignore[arg-type]
    deadline.enter(Phase.IDLE)  # armed for the 5 s keep-alive timeout
    loop.advance(0.5)
    deadline.enter(Phase.HEADERS)  # due at 1.5 s, not at 5 s
    loop.advance(0.9)
    assert expired == []
    loop.advance(0.2)
    assert expired == [Phase.HEADERS]
