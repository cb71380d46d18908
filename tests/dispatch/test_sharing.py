"""Several processes' governors on one store: their shares add up to one limit, a cut
seen by one reaches the others, and so does an open breaker."""

from __future__ import annotations

import asyncio

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
    store, clock = MemoryGovernorStore(), Clock()
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
