"""One governor's part in the in-flight limit several processes share (`--workers`, or
gateway instances on one Redis): forebay/policy/shared_limit.py has the rule, the store
applies it, this runs it a few times a second.

Why a shared limit and not N independent governors: each would find the origin's
capacity on its own and their sum would overshoot it, by up to N probes at once. Why
shares synced every quarter second and not a token taken from the store per request: a
store round trip on every delivery would sit on the hot path; a share costs one
round trip per process per window, and live traffic is never held back anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from forebay.dispatch.limits import OriginGovernor
from forebay.policy.governor import GovernorSettings
from forebay.policy.shared_limit import Share, SharingRules
from forebay.store.base import GovernorStore
from forebay.tasks import cancel_and_wait

log = structlog.get_logger("forebay.governor")


class SharedGovernor(OriginGovernor):
    """An `OriginGovernor` that may use only its share of the shared limit."""

    def __init__(
        self,
        settings: GovernorSettings,
        store: GovernorStore,
        member: str,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        # The group re-measures together (`measure_together`), not each on its own timer.
        own = replace(
            settings,
            remeasure_raises=False,
            remeasure_every=math.inf,
            resume_after_relearn=False,
        )
        super().__init__(own, clock)
        self.settings = own
        self.store = store
        self.member = member
        self.rules = SharingRules(
            window=settings.window,
            min_limit=settings.min_limit,
            max_limit=settings.max_limit,
            remeasure_every=settings.remeasure_every,
        )
        self.share: Share | None = None
        self.on_more: Callable[[], None] = lambda: None  # the dispatcher's wake-up
        self._synced_target = self.governor.target
        self._synced_at = clock()
        self._received_hold = 0.0
        self._task: asyncio.Task[None] | None = None
        # Timers on the same clock as `clock` (the event loop's by default).
        self._call_later = call_later or (lambda d, f: asyncio.get_running_loop().call_later(d, f))
        self._measure_timer: Any = None
        self._measured_at = -math.inf

    def allowed(self) -> int:
        g = self.governor
        now = self.clock()
        allowed = g.allowed(now)
        if self.share is None:
            return allowed
        if now - self._synced_at > self.rules.member_ttl:
            # Not heard by the store for so long that the others have taken this
            # share over: sending more would go past the limit.
            return 0
        slots = self.share.slots
        if g.measuring_together and allowed > 0:
            # The group measures with one request per process at least: a process whose
            # share rounds down to nothing (a limit below the number of processes) would
            # miss the measurement, keep the baseline from before the origin slowed
            # down, and read the new latency as queueing, cutting the group's limit
            # every window until the next measurement.
            return max(1, min(allowed, slots))
        if g.target < self._synced_target:
            # Cut since the last sync: the smaller share now, not at the next sync.
            slots = math.floor(slots * g.target / self._synced_target)
        if allowed >= max(1, math.floor(g.target)):
            # Not held back (paused, probing, re-measuring): the share, exactly, so
            # that the shares of the processes add up to the limit.
            return slots
        return min(allowed, slots)

    def available(self) -> int:
        return max(0, self.allowed() - self.governor.in_flight)

    async def sync(self) -> None:
        g = self.governor
        now = self.clock()
        ratio = g.target / self._synced_target
        # Only a hold of its own: one received from the others is theirs to renew.
        held = g.held_until()
        hold_for = held - now if held > self._received_hold + 1e-3 else 0.0
        before = self.allowed()
        # Should the store have lost everyone (an outage longer than the membership),
        # the limit starts again from this process's view of the whole, not its part.
        whole = g.target * (self.share.members if self.share else 1)
        share = await self.store.sync(self.member, ratio, hold_for, whole, self.rules)
        now = self.clock()
        if share.hold_for > 0:
            self._received_hold = now + share.hold_for
            g.paused_until = max(g.paused_until, self._received_hold)
        # The governor works in units of its part: its floor and ceiling are its part of
        # the shared ones, so that a cut at the floor still reaches the shared limit.
        # A re-measurement may raise a baseline only while the whole group sends next to
        # nothing (a probe's worth, or one request per process): then it measures the
        # no-load latency (the origin got slower, and the limit fell for it), not the
        # others' load.
        g.settings = replace(
            self.settings,
            min_limit=self.settings.min_limit / share.members,
            max_limit=self.settings.max_limit / share.members,
            remeasure_raises=self._at_floor(share),
        )
        g.rescale(share.fraction)
        if share.slots > 0 and self.share is not None and self.share.slots == 0:
            # Holding no request of the limit, it heard nothing of what the others have
            # learnt since (an origin that got slower, re-measured): judged on its old
            # baseline, its first window would read as queueing and cut the group again.
            g.remeasure_now(now)
        self._synced_target = g.target
        self._synced_at = now
        self.share = share
        self._schedule_measurement(share.measure_in)
        if self.allowed() > before:
            self.on_more()

    def _schedule_measurement(self, due: float) -> None:
        """Every process re-measures at the same moment of the store's clock: set a timer
        for it when it is near (syncs come a few times a second)."""
        if self._measure_timer is not None or due > 4 * self.rules.window:
            return
        if self.clock() + due - self._measured_at < self.rules.window:
            return  # just done: a late sync's view of the same moment
        self._measure_timer = self._call_later(due, self.measure_together)

    def measure_together(self) -> None:
        self._measure_timer = None
        share, now = self.share, self.clock()
        if share is None:
            return
        self._measured_at = now
        # What it measures is the origin at no load, and may raise a baseline, when the
        # group's probes (half of each share, one request at least) are at most half the
        # shared limit, or no more than one governor alone measures with, or the limit is
        # so low that nobody sends more anyway.
        raises = (
            2 * share.members <= share.limit
            or share.members <= self.settings.min_limit_probe
            or self._at_floor(share)
        )
        # At most a quarter of the time between two. An origin too slow for that is
        # re-measured by each process alone, at a few requests, and then a baseline may
        # rise only while the group is at its floor (`remeasure_raises`, set at sync).
        g = self.governor
        if not g.remeasure_together(now, raises, within=self.rules.remeasure_every / 4):
            g.remeasure_soon(now)

    def _at_floor(self, share: Share) -> bool:
        """The group sends next to nothing: a probe's worth, or one request per process."""
        s = self.settings
        return math.floor(share.limit) <= max(s.min_limit_probe, s.min_limit * share.members)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="governor-sync")

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.sync()
                failing = False
            except Exception:
                # The last share stays for the membership's lifetime (a store that is
                # down stops accepts anyway); after that `allowed()` is 0 until a sync
                # succeeds, since the others may have taken the share over.
                if not failing:
                    log.warning("governor sync failed; keeping the last share", exc_info=True)
                failing = True
            # Jittered, so that processes started together do not sync in lockstep.
            await asyncio.sleep(self.rules.window * random.uniform(0.8, 1.2))

    async def stop(self) -> None:
        if self._measure_timer is not None:
            self._measure_timer.cancel()
        if self._task is not None:
            await cancel_and_wait([self._task])
        with contextlib.suppress(Exception):
            await self.store.leave(self.member)
