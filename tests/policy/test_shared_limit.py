"""The rule by which several processes' governors share one in-flight limit."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.governor import Governor, GovernorSettings
from forebay.policy.shared_limit import (
    Share,
    SharedLimit,
    SharingRules,
    leave,
    measure_in,
    sync,
)

RULES = SharingRules(window=0.25, member_ttl=2.0, min_limit=1.0, max_limit=100.0)


@given(
    limit=st.floats(min_value=0, max_value=10_000, allow_nan=False),
    members=st.integers(min_value=1, max_value=50),
)
def test_the_shares_add_up_to_the_limit(limit: float, members: int) -> None:
    slots = [Share(limit, members, rank, 0.0).slots for rank in range(members)]
    assert sum(slots) == math.floor(limit)
    assert max(slots) - min(slots) <= 1
    assert min(slots) >= 0


@pytest.mark.parametrize(
    ("limit", "members", "expected"),
    [
        (10, 1, [10]),
        (10, 2, [5, 5]),
        (10, 3, [4, 3, 3]),
        (10.9, 4, [3, 3, 2, 2]),
        (1, 3, [1, 0, 0]),
    ],
)
def test_shares_table(limit: float, members: int, expected: list[int]) -> None:
    assert [Share(limit, members, r, 0.0).slots for r in range(members)] == expected


def test_the_first_sync_starts_from_the_processs_own_limit() -> None:
    record, share = sync(None, "a", 1.0, 0.0, 12.0, now=100.0, rules=RULES)
    assert (share.limit, share.members, share.rank, share.hold_for) == (12.0, 1, 0, 0.0)
    assert record.members == {"a": 102.0}


def test_members_are_ranked_in_id_order_and_expire() -> None:
    record, _ = sync(None, "b", 1.0, 0.0, 12.0, now=0.0, rules=RULES)
    record, share = sync(record, "a", 1.0, 0.0, 12.0, now=1.0, rules=RULES)
    assert (share.members, share.rank) == (2, 0)
    # b was last heard at 0 and expires at 2: at 2.5 a is alone.
    record, share = sync(record, "a", 1.0, 0.0, 12.0, now=2.5, rules=RULES)
    assert (share.members, share.rank) == (1, 0)


def test_a_clean_stop_hands_the_share_over_at_once() -> None:
    record, _ = sync(None, "a", 1.0, 0.0, 12.0, now=0.0, rules=RULES)
    record, _ = sync(record, "b", 1.0, 0.0, 12.0, now=0.1, rules=RULES)
    left = leave(record, "a")
    assert left is not None
    _, share = sync(left, "b", 1.0, 0.0, 12.0, now=0.2, rules=RULES)
    assert share.members == 1 and share.slots == 12


def test_a_group_nobody_is_left_in_starts_over() -> None:
    record, _ = sync(None, "a", 2.0, 0.0, 12.0, now=0.0, rules=RULES)
    record, share = sync(record, "a", 2.0, 0.0, 12.0, now=1.0, rules=RULES)
    assert share.limit == 24.0
    _, share = sync(record, "b", 1.0, 0.0, 8.0, now=10.0, rules=RULES)
    assert share.limit == 8.0


# (ratio of the first change, delay, ratio of the second) -> limit after both, from 10.
@pytest.mark.parametrize(
    ("first", "delay", "second", "expected"),
    [
        (1.5, 0.1, 1.5, 15.0),  # a second rise within the window is dropped
        (1.5, 0.3, 1.5, 22.5),  # after the window it applies
        (0.8, 0.1, 0.8, 8.0),  # one slowdown seen by two processes cuts once
        (1.5, 0.1, 0.8, 12.0),  # a cut right after a rise still applies: safety first
        (0.8, 0.1, 1.5, 8.0),  # a rise right after a cut does not
        (0.5, 0.3, 0.5, 2.5),
        (1.0, 0.0, 0.9, 9.0),  # no change is not a change
    ],
)
def test_one_change_per_window(first: float, delay: float, second: float, expected: float) -> None:
    record, _ = sync(None, "a", 1.0, 0.0, 10.0, now=0.0, rules=RULES)
    record, _ = sync(record, "b", first, 0.0, 10.0, now=1.0, rules=RULES)
    _, share = sync(record, "a", second, 0.0, 10.0, now=1.0 + delay, rules=RULES)
    assert share.limit == pytest.approx(expected)


@pytest.mark.parametrize(("ratio", "expected"), [(1000.0, 100.0), (0.0001, 1.0), (math.inf, 10.0)])
def test_the_limit_stays_within_bounds(ratio: float, expected: float) -> None:
    record, _ = sync(None, "a", 1.0, 0.0, 10.0, now=0.0, rules=RULES)
    _, share = sync(record, "a", ratio, 0.0, 10.0, now=1.0, rules=RULES)
    assert share.limit == expected


def test_a_hold_reaches_every_process_and_runs_out() -> None:
    record, _ = sync(None, "a", 1.0, 0.0, 10.0, now=0.0, rules=RULES)
    record, share = sync(record, "b", 1.0, 3.0, 10.0, now=1.0, rules=RULES)
    assert share.hold_for == 3.0
    record, share = sync(record, "a", 1.0, 0.0, 10.0, now=2.0, rules=RULES)
    assert share.hold_for == pytest.approx(2.0)
    # A shorter hold does not shorten a longer one.
    record, share = sync(record, "a", 1.0, 0.5, 10.0, now=2.0, rules=RULES)
    assert share.hold_for == pytest.approx(2.0)
    _, share = sync(record, "a", 1.0, 0.0, 10.0, now=5.0, rules=RULES)
    assert share.hold_for == 0.0


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.floats(min_value=0.1, max_value=3.0),
            st.floats(min_value=0.0, max_value=1.0),
        ),
        max_size=40,
    )
)
def test_any_sequence_of_syncs_keeps_the_limit_in_bounds_and_me_a_member(
    steps: list[tuple[str, float, float]],
) -> None:
    record: SharedLimit | None = None
    now = 0.0
    for member, ratio, delay in steps:
        now += delay
        record, share = sync(record, member, ratio, 0.0, 10.0, now, RULES)
        assert RULES.min_limit <= share.limit <= RULES.max_limit
        assert member in record.members and 0 <= share.rank < share.members


def test_rescale_moves_what_the_governor_learnt_with_the_limit() -> None:
    s = GovernorSettings(initial_limit=20.0)
    g = Governor(s, now=0.0)
    assert g.limit == s.min_limit_probe and g.target == 20.0  # measuring at first
    g.rescale(10.0)
    assert g.target == 10.0 and g.limit == s.min_limit_probe
    g._measuring = False
    g.limit = 10.0
    g._ssthresh, g._good = 16.0, 12.0
    g.rescale(5.0)
    assert (g.limit, g._ssthresh, g._good) == (5.0, 8.0, 6.0)
    g.rescale(0.2)  # below the minimum: the minimum
    assert g.limit == s.min_limit


def test_a_clock_stepping_back_neither_keeps_the_dead_nor_blocks_changes() -> None:
    record, _ = sync(None, "a", 1.0, 0.0, 10.0, now=1000.0, rules=RULES)
    record, _ = sync(record, "b", 1.5, 0.0, 10.0, now=1000.1, rules=RULES)
    # The wall clock steps back an hour; only b syncs from then on.
    record, share = sync(record, "b", 1.5, 0.0, 10.0, now=-2600.0, rules=RULES)
    assert share.limit == pytest.approx(22.5)  # the rise applies: the window is over
    assert record.members["a"] == -2600.0 + RULES.member_ttl
    _, share = sync(record, "b", 1.0, 0.0, 10.0, now=-2600.0 + 2.5, rules=RULES)
    assert share.members == 1  # a, silent, ran out within one membership


@pytest.mark.parametrize(
    ("now", "every", "due"),
    [
        (0.0, 30.0, 30.0),
        (29.75, 30.0, 0.25),
        (30.0, 30.0, 30.0),
        (1_764_000_011.0, 30.0, 19.0),
        (5.0, math.inf, math.inf),
        (5.0, 0.0, math.inf),
    ],
)
def test_the_group_re_measures_at_multiples_of_the_store_clock(
    now: float, every: float, due: float
) -> None:
    assert measure_in(now, every) == pytest.approx(due)


def test_every_member_hears_the_same_moment() -> None:
    rules = SharingRules(remeasure_every=30.0)
    record, a = sync(None, "a", 1.0, 0.0, 10.0, now=100.0, rules=rules)
    _, b = sync(record, "b", 1.0, 0.0, 10.0, now=101.5, rules=rules)
    assert (100.0 + a.measure_in, 101.5 + b.measure_in) == (120.0, 120.0)
