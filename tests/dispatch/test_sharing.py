"""Several processes' governors on one store: their shares add up to one limit, a cut
seen by one reaches the others, and so does an open breaker."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from forebay.dispatch.sharing import SharedGovernor
from forebay.policy.governor import GovernorSettings
from forebay.policy.shared_limit import SharingRules
from forebay.store.governor import MemoryGovernorStore

SETTINGS = GovernorSettings(initial_limit=12.0, breaker_failures=3, cooldown=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pair() -> tuple[SharedGovernor, SharedGovernor, Clock]:
    clock = Clock()
    store = MemoryGovernorStore(clock)
    a = SharedGovernor(SETTINGS, store, "a", clock)
    b = SharedGovernor(SETTINGS, store, "b", clock)
    for g in (a, b):
        g.rules = SharingRules(window=0.0)  # every change applies: the test sets the pace
        g.governor._measuring = False  # past the first no-load measurement
        g.governor.limit = g.governor._saved_limit
    return a, b, clock


async def test_the_shares_add_up_to_one_limit() -> None:
    a, b, _ = pair()
    await a.sync()
    assert a.allowed() == 12  # alone
    await b.sync()
    await a.sync()
    assert (a.allowed(), b.allowed()) == (6, 6)
    assert a.governor.target == b.governor.target == 6.0
    for _ in range(4):
        a.started()
    assert (a.available(), b.available()) == (2, 6)


async def test_a_cut_one_governor_decides_reaches_the_other() -> None:
    a, b, _ = pair()
    await a.sync()
    await b.sync()
    await a.sync()
    a.governor.limit *= 0.5  # what its own overload window would do
    await a.sync()
    await b.sync()
    assert a.share is not None and a.share.limit == 6.0
    assert (a.allowed(), b.allowed()) == (3, 3)
    assert b.governor.target == 3.0


async def test_an_open_breaker_holds_every_process() -> None:
    a, b, clock = pair()
    await a.sync()
    await b.sync()
    for _ in range(3):
        a.started()
        a.finished(None, None)  # no answer: the origin is down
    assert a.allowed() == 0
    await a.sync()
    await b.sync()
    assert b.allowed() == 0
    clock.now = 5.5  # past the cool-down: a probes, b sends its share again
    await a.sync()
    await b.sync()
    assert a.allowed() == 1
    # of the limit a's failures cut by a fifth: 12 x 0.8 = 9.6, shared 5 and 4
    assert b.allowed() == 4


async def test_a_process_that_leaves_gives_its_share_back() -> None:
    a, b, _ = pair()
    more = asyncio.Event()
    a.on_more = more.set
    await a.sync()
    await b.sync()
    await a.sync()
    assert a.allowed() == 6 and not more.is_set()
    await b.stop()
    await a.sync()
    assert a.allowed() == 12 and more.is_set()


async def test_a_store_that_fails_keeps_the_last_share() -> None:
    a, b, _ = pair()
    await a.sync()
    await b.sync()
    await a.sync()

    failures = 0
    several = asyncio.Event()

    async def broken(*args: object) -> None:
        nonlocal failures
        failures += 1
        if failures == 3:
            several.set()
        raise ConnectionError("store down")

    a.store.sync = broken  # type: ignore[method-assign, assignment]
    a.rules = SharingRules(window=0.001)
    a.start()
    await asyncio.wait_for(several.wait(), 5)  # the loop survives failed syncs
    assert a._task is not None and not a._task.done()
    assert a.allowed() == 6
    await a.stop()


def group(n: int, initial: float) -> tuple[list[SharedGovernor], Clock]:
    clock = Clock()
    store = MemoryGovernorStore(clock)
    settings = GovernorSettings(initial_limit=initial)
    members = [SharedGovernor(settings, store, f"p{i}", clock) for i in range(n)]
    for g in members:
        g.rules = SharingRules(window=0.0)
        g.governor._measuring = False
        g.governor.limit = g.governor._saved_limit
    return members, clock


async def sync_all(members: list[SharedGovernor]) -> None:
    for g in members:
        await g.sync()
    for g in members:
        await g.sync()


async def test_more_processes_than_the_limit_can_still_cut_it() -> None:
    members, _ = group(6, 5.0)
    await sync_all(members)
    assert sum(g.allowed() for g in members) == 5
    first = members[0]
    first.governor.limit *= first.governor.settings.backoff  # its overload window's cut
    await first.sync()
    assert first.share is not None and first.share.limit == 4.0


async def test_a_cut_applies_before_the_next_sync() -> None:
    members, _ = group(2, 20.0)
    await sync_all(members)
    a = members[0]
    assert a.allowed() == 10
    a.governor.limit *= 0.5
    assert a.allowed() == 5


async def test_an_outage_longer_than_membership_keeps_the_whole_limit() -> None:
    members, clock = group(4, 40.0)
    await sync_all(members)
    clock.now += 10  # nobody reached the store: every membership ran out
    await members[0].sync()
    assert members[0].share is not None and members[0].share.limit == 40.0


async def test_a_process_the_store_has_not_heard_from_stops_delivering() -> None:
    members, clock = group(2, 20.0)
    await sync_all(members)
    clock.now += 3  # past the 2 s membership: the other may have taken this share
    assert members[0].allowed() == 0
    await members[0].sync()
    assert members[0].allowed() > 0


async def test_baselines_rise_only_while_the_whole_group_is_at_the_floor() -> None:
    members, _ = group(2, 20.0)
    await sync_all(members)
    assert not members[0].governor.settings.remeasure_raises  # 20 in flight in all
    for g in members:
        g.governor.limit = g.governor.settings.min_limit  # cut down: the origin slowed
        await g.sync()
    await sync_all(members)
    assert members[0].share is not None and members[0].share.limit <= 2.0
    assert members[0].governor.settings.remeasure_raises


async def test_every_process_re_measures_at_one_moment_of_the_store_clock() -> None:
    store_clock = Clock()
    store_clock.now = 29.9  # a tenth of a second before the group's next re-measurement
    store = MemoryGovernorStore(store_clock)
    members = [SharedGovernor(GovernorSettings(), store, f"p{i}") for i in range(2)]
    both = asyncio.Event()
    for g in members:
        g.governor._measuring = False
        g.governor.limit = g.governor._saved_limit
        original = g.measure_together

        def measure(original: Callable[[], None] = original) -> None:
            original()
            if all(m.governor._together for m in members):
                both.set()

        g.measure_together = measure  # type: ignore[method-assign]
    for g in members:
        await g.sync()
    await asyncio.wait_for(both.wait(), timeout=2.0)
    for g in members:  # half its share, at one moment
        assert g.governor.allowed(g.clock()) == max(1, math.floor(g.governor.target / 2))
    for g in members:
        await g.stop()


async def test_a_process_whose_share_rounds_to_nothing_measures_with_the_group() -> None:
    members, clock = group(3, 2.0)
    await sync_all(members)
    last = members[2]
    assert [g.allowed() for g in members] == [1, 1, 0]
    # The group's measurement: one request per process at least, this one's included.
    for g in members:
        assert g.governor.remeasure_together(clock.now, True, within=10.0)
    assert last.allowed() == 1


async def test_a_process_given_a_share_again_re_measures_first() -> None:
    members, _ = group(3, 2.0)
    await sync_all(members)
    last = members[2]
    assert last.allowed() == 0 and not last.governor._measuring
    first = members[0]
    first.governor.limit *= 2  # the others have learnt something: the limit grows
    await first.sync()
    await last.sync()
    assert last.allowed() >= 1 and last.governor._measuring
