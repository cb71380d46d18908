from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.gcra import (
    Decision,
    Limit,
    decide,
    decide_all,
    parse_rate,
    policy_item,
    retry_after_seconds,
    state_item,
)


@pytest.mark.parametrize(
    ("text", "burst", "expected"),
    [
        ("100/s", None, Limit(100, 1.0, 100)),
        ("20/m", None, Limit(20, 60.0, 20)),
        ("1000/h", None, Limit(1000, 3600.0, 1000)),
        ("5 / min", None, Limit(5, 60.0, 5)),
        ("10/second", 3, Limit(10, 1.0, 3)),
        ("10/s burst 30", 3, Limit(10, 1.0, 30)),
        ("1/hour", None, Limit(1, 3600.0, 1)),
    ],
)
def test_parse_rate(text: str, burst: int | None, expected: Limit) -> None:
    assert parse_rate(text, burst) == expected


@pytest.mark.parametrize("text", ["", "100", "100/d", "0/s", "-1/s", "1/s burst 0", "a/s", "1/s x"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


@pytest.mark.parametrize("text", ["100/s", "20/m burst 40", "7/h"])
def test_describe_round_trips(text: str) -> None:
    assert parse_rate(parse_rate(text).describe()) == parse_rate(text)


def run(limit: Limit, times: list[float]) -> list[Decision]:
    tat: float | None = None
    out = []
    for t in times:
        d = decide(limit, tat, t)
        if d.allowed:
            tat = d.tat
        out.append(d)
    return out


def test_burst_then_refused_then_one_per_interval() -> None:
    limit = Limit(2, 1.0, 3)  # one every 0.5 s, three at once
    got = run(limit, [0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.5])
    assert [d.allowed for d in got] == [True, True, True, False, False, True, False]
    assert [d.remaining for d in got[:3]] == [2, 1, 0]
    assert got[3].retry_after == pytest.approx(0.5)
    assert got[4].retry_after == pytest.approx(0.25)
    assert got[2].reset_after == pytest.approx(1.5)


def test_a_quiet_spell_refills_the_bucket_and_no_more() -> None:
    limit = Limit(1, 1.0, 2)
    got = run(limit, [0.0, 0.0, 100.0, 100.0, 100.0])
    assert [d.allowed for d in got] == [True, True, True, True, False]


def test_refusal_leaves_the_tat_alone() -> None:
    limit = Limit(1, 10.0, 1)
    first = decide(limit, None, 0.0)
    refused = decide(limit, first.tat, 1.0)
    assert not refused.allowed and refused.tat == first.tat
    assert refused.retry_after == pytest.approx(9.0)
    assert decide(limit, first.tat, 10.0).allowed


def test_decide_all_needs_every_limit() -> None:
    loose, tight = Limit(100, 1.0, 100), Limit(1, 60.0, 1)
    ok, ds = decide_all([(loose, None), (tight, None)], 0.0)
    assert ok and all(d.allowed for d in ds)
    ok, ds = decide_all([(loose, ds[0].tat), (tight, ds[1].tat)], 1.0)
    assert not ok and ds[0].allowed and not ds[1].allowed
    assert retry_after_seconds(ds) == 59


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    refused = [Decision(False, 0.0, 0, 0.01, 0.0)]
    assert retry_after_seconds(refused) == 1
    assert retry_after_seconds([Decision(False, 0.0, 0, 2.0, 0.0)]) == 2
    assert retry_after_seconds([Decision(False, 0.0, 0, 2.2, 0.0)]) == 3


def test_header_items() -> None:
    limit = parse_rate("100/m")
    assert policy_item("consumer", limit) == '"consumer";q=100;w=60'
    d = decide(limit, None, 0.0)
    assert state_item("consumer", d) == '"consumer";r=99;t=1'
    assert policy_item("x", parse_rate("10/s burst 5")) == '"x";q=5;w=1'


limits = st.builds(
    Limit,
    count=st.integers(1, 50),
    period=st.sampled_from([1.0, 60.0, 3600.0]),
    burst=st.integers(1, 50),
)
gaps = st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200)


@given(limits, gaps)
def test_never_more_than_burst_plus_rate_in_any_window(limit: Limit, steps: list[float]) -> None:
    times = []
    t = 0.0
    for gap in steps:
        t += gap * limit.emission
        times.append(t)
    admitted = [t for t, d in zip(times, run(limit, times), strict=True) if d.allowed]
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - start
            assert j - i + 1 <= limit.burst + math.floor(span / limit.emission + 1e-6)


@given(limits, st.integers(1, 100))
def test_the_sustained_rate_is_always_admitted(limit: Limit, n: int) -> None:
    times = [i * limit.emission for i in range(n)]
    assert all(d.allowed for d in run(limit, times))


@given(limits, gaps)
def test_waiting_retry_after_is_enough(limit: Limit, steps: list[float]) -> None:
    tat: float | None = None
    t = 0.0
    for gap in steps:
        t += gap * limit.emission
        d = decide(limit, tat, t)
        if d.allowed:
            tat = d.tat
        else:
            assert d.remaining == 0 and d.retry_after > 0
            assert decide(limit, tat, t + d.retry_after).allowed
            assert 0 <= d.reset_after <= limit.tolerance + 1e-9
