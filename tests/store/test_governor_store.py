"""The governors' shared limit, the same behaviour on every backend: the rule of
forebay/policy/shared_limit.py, applied atomically with the store's own clock."""

from __future__ import annotations

import math
import time

import pytest

from forebay.policy.shared_limit import SharingRules
from forebay.store import Store

# A long window, so that the test's own pace cannot decide which changes apply.
RULES = SharingRules(window=30.0, member_ttl=30.0, min_limit=1.0, max_limit=100.0)


async def test_members_share_the_limit(store: Store) -> None:
    a = await store.governor.sync("a", 1.0, 0.0, 10.0, RULES)
    assert (a.limit, a.members, a.rank, a.slots) == (10.0, 1, 0, 10)
    b = await store.governor.sync("b", 1.0, 0.0, 50.0, RULES)  # joins: its own limit is ignored
    a = await store.governor.sync("a", 1.0, 0.0, 10.0, RULES)
    assert (b.limit, b.members, b.rank, b.slots) == (10.0, 2, 1, 5)
    assert (a.members, a.rank, a.slots) == (2, 0, 5)


async def test_one_change_per_window_but_a_cut_after_a_rise(store: Store) -> None:
    await store.governor.sync("a", 1.0, 0.0, 10.0, RULES)
    up = await store.governor.sync("a", 1.5, 0.0, 10.0, RULES)
    again = await store.governor.sync("b", 1.5, 0.0, 10.0, RULES)
    cut = await store.governor.sync("b", 0.5, 0.0, 10.0, RULES)
    cut_again = await store.governor.sync("a", 0.5, 0.0, 10.0, RULES)
    assert [up.limit, again.limit, cut.limit, cut_again.limit] == pytest.approx(
        [15.0, 15.0, 7.5, 7.5]
    )


async def test_limits_are_clamped_and_odd_ratios_ignored(store: Store) -> None:
    await store.governor.sync("a", 1.0, 0.0, 500.0, RULES)
    low = await store.governor.sync("a", 1e-6, 0.0, 10.0, RULES)
    assert low.limit == 1.0
    same = await store.governor.sync("a", math.inf, 0.0, 10.0, RULES)
    assert same.limit == 1.0


async def test_a_hold_is_seen_by_all_and_counts_down(store: Store) -> None:
    await store.governor.sync("a", 1.0, 0.0, 10.0, RULES)
    held = await store.governor.sync("a", 1.0, 5.0, 10.0, RULES)
    seen = await store.governor.sync("b", 1.0, 0.0, 10.0, RULES)
    assert 4.0 < seen.hold_for <= held.hold_for <= 5.0


async def test_leaving_hands_the_share_over(store: Store) -> None:
    await store.governor.sync("a", 1.0, 0.0, 9.0, RULES)
    await store.governor.sync("b", 1.0, 0.0, 9.0, RULES)
    await store.governor.leave("a")
    b = await store.governor.sync("b", 1.0, 0.0, 9.0, RULES)
    assert (b.members, b.rank, b.slots) == (1, 0, 9)


async def test_a_silent_member_expires(store: Store) -> None:
    # a's membership lasts a microsecond: gone by b's sync, one store round trip later,
    # on the store's own clock, with nothing to wait for.
    await store.governor.sync("a", 1.0, 0.0, 9.0, SharingRules(window=30.0, member_ttl=1e-6))
    b = await store.governor.sync("b", 1.0, 0.0, 9.0, RULES)
    assert (b.members, b.slots) == (1, 9)


async def test_the_next_group_re_measurement_is_on_the_store_clock(store: Store) -> None:
    rules = SharingRules(window=30.0, member_ttl=30.0, remeasure_every=7.0)
    asked_a = time.monotonic()
    a = await store.governor.sync("a", 1.0, 0.0, 10.0, rules)
    asked_b = time.monotonic()
    b = await store.governor.sync("b", 1.0, 0.0, 10.0, rules)
    assert 0 < a.measure_in <= 7.0 and 0 < b.measure_in <= 7.0
    # Asked a moment apart, both name the same moment (or one period apart).
    gap = abs((asked_a + a.measure_in) - (asked_b + b.measure_in)) % 7.0
    assert min(gap, 7.0 - gap) < 0.5
