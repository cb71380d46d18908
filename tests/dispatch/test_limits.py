"""The governor's adapter: the gateway's own loop lag is not taken for the origin's."""

from __future__ import annotations

import asyncio
import time

from forebay.dispatch.limits import LoopLag, OriginGovernor
from forebay.policy.governor import GovernorSettings


def busy(seconds: float) -> None:
    """Keep the loop from running anything else, as a burst of work does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_loop_lag_rises_while_the_loop_is_busy_and_falls_after() -> None:
    lag = LoopLag()
    lag.watch()
    deadline = time.monotonic() + 10
    while lag.lag < 0.005:
        assert time.monotonic() < deadline, lag.lag
        busy(0.03)
        await asyncio.sleep(0)  # let the timer run
    while lag.lag > 0.002:
        assert time.monotonic() < deadline, lag.lag
        await asyncio.sleep(0.005)  # polling, an idle loop
    lag.watch()  # a second watch on the same loop starts no second timer


async def test_the_origin_latency_is_what_was_seen_less_the_loop_lag() -> None:
    g = OriginGovernor(GovernorSettings())
    g.started()
    g.loop_lag.lag = 0.004
    g.finished(0.05, 200)
    assert g.governor._window.samples == [("", 0.046)]
    g.started()
    g.loop_lag.lag = 0.2  # never more than half of what was seen
    g.finished(0.05, 200)
    assert g.governor._window.samples[-1] == ("", 0.025)
