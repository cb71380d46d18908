"""The circuit breaker alone (with the governor: `test_governor.py`)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.breaker import Breaker, CircuitBreaker


def opened(at: float = 0.0, failures: int = 3) -> CircuitBreaker:
    b = CircuitBreaker(failures=failures, cooldown=1.0, max_cooldown=4.0)
    for _ in range(failures):
        b.failed(at)
    assert b.state is Breaker.OPEN
    return b


@pytest.mark.parametrize(
    ("events", "state"),
    [
        ("ff", Breaker.CLOSED),  # two failures of three
        ("fff", Breaker.OPEN),
        ("ffaff", Breaker.CLOSED),  # an answer starts the count again
        ("ffafff", Breaker.OPEN),
        ("fffa", Breaker.CLOSED),  # an answer while open (live traffic) closes it
    ],
)
def test_opens_after_consecutive_failures(events: str, state: Breaker) -> None:
    b = CircuitBreaker(failures=3, cooldown=1.0, max_cooldown=4.0)
    for e in events:
        if e == "f":
            b.failed(0.0)
        else:
            b.answered()
    assert b.state is state


def test_closed_sets_no_bound_of_its_own() -> None:
    b = CircuitBreaker(failures=3, cooldown=1.0, max_cooldown=4.0)
    assert b.allowed(0.0) is None
    assert b.held_until() == -math.inf
    assert b.answered() is False  # nothing to close


@pytest.mark.parametrize(("now", "allowed", "state"), [(0.5, 0, "open"), (1.0, 1, "half_open")])
def test_holds_for_the_cool_down_then_lets_one_probe(now: float, allowed: int, state: str) -> None:
    b = opened()
    assert b.held_until() == 1.0
    assert b.allowed(now) == allowed
    assert b.state == state


def test_one_probe_at_a_time_while_half_open() -> None:
    b = opened()
    assert b.allowed(1.0) == 1
    b.started()
    assert b.allowed(1.0) == 0
    assert b.held_until() == -math.inf  # half-open holds nothing by time


def test_a_failed_probe_doubles_the_cool_down_up_to_the_most() -> None:
    b = opened()
    now = 0.0
    for expected in (2.0, 4.0, 4.0):
        now = b.held_until()
        assert b.allowed(now) == 1
        b.started()
        b.failed(now)
        assert b.state is Breaker.OPEN
        assert b.held_until() - now == expected


def test_an_answered_probe_closes_it_and_resets_the_cool_down() -> None:
    b = opened()
    b.allowed(1.0)
    b.started()
    b.failed(1.0)  # cool-down now 2
    b.allowed(3.0)
    b.started()
    assert b.answered() is True
    assert b.state is Breaker.CLOSED
    assert b.allowed(3.0) is None
    for _ in range(3):
        b.failed(4.0)
    assert b.held_until() == 5.0  # the first cool-down again


@given(st.lists(st.sampled_from(["fail", "answer", "start", "tick"]), max_size=60))
def test_a_caller_that_heeds_it_sends_one_probe_per_half_open_spell(events: list[str]) -> None:
    b = CircuitBreaker(failures=2, cooldown=1.0, max_cooldown=8.0)
    now, in_flight, probes = 0.0, 0, 0
    for e in events:
        if e == "tick":
            now += 0.7
        elif e == "start":
            allowed = b.allowed(now)
            if allowed is None or in_flight < allowed:
                probes += b.state is Breaker.HALF_OPEN
                b.started()
                in_flight += 1
        elif in_flight:
            in_flight -= 1
            if e == "fail":
                b.failed(now)
            else:
                b.answered()
        if b.state is not Breaker.HALF_OPEN:
            probes = 0
        assert probes <= 1
        assert (b.allowed(now) is None) == (b.state is Breaker.CLOSED)
