"""One in-flight limit for several gateway processes: how their governors share it.

Each process (a `--workers` process, or a gateway instance on a shared Redis) runs its own
governor on the latencies it sees, and a few times a second syncs with the store:

- it reports the change its governor made since the last sync, as a ratio, and applies
  it to the one shared limit; changes are rate-limited to one per window across all
  processes, because every governor watches the same origin: when it slows down they all
  see it, and N cuts of 20% for one slowdown would be a cut of 1 - 0.8^N. A cut may still
  follow a rise in the same window (safety first), never another cut;
- it renews its membership, which expires after `member_ttl` if the process dies, so its
  share goes back to the others;
- it reports a hold (its breaker is open, or the origin sent `Retry-After`) that every
  process honours, since the origin is down or overloaded for all of them;
- it gets back its share: the limit divided by the live members, the remainder going to
  the first ones in id order, so the shares add up to exactly the limit;
- and how long until the group's next re-measurement of the no-load latency: every
  `remeasure_every` seconds of the store's clock, the same moment for every process.

The store applies `sync` atomically (a transaction, a Lua script); this module is the rule
it applies, with `now` from the store's own clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class SharingRules:
    window: float = 0.25  # at most one change of the shared limit per window
    member_ttl: float = 2.0  # a process not heard from for this long has left
    min_limit: float = 1.0
    max_limit: float = 1000.0
    remeasure_every: float = 30.0  # the group re-measures at multiples of this, store time


@dataclass(frozen=True, slots=True)
class SharedLimit:
    """The record the store keeps."""

    limit: float
    changed_at: float = -math.inf
    direction: int = 0  # of the last change: 1 up, -1 down
    hold_until: float = -math.inf
    members: dict[str, float] = field(default_factory=dict)  # id -> expires at


@dataclass(frozen=True, slots=True)
class Share:
    """What one process gets back from a sync."""

    limit: float  # the shared limit, all processes together
    members: int
    rank: int  # of this process among the members, in id order
    hold_for: float  # seconds every process sends nothing
    measure_in: float = math.inf  # seconds until the group re-measures together

    @property
    def slots(self) -> int:
        """How many of the limit's requests this process may have in flight."""
        whole = math.floor(self.limit)
        return whole // self.members + (1 if self.rank < whole % self.members else 0)

    @property
    def fraction(self) -> float:
        """This process's part of the limit, unrounded: the scale its governor works in."""
        return self.limit / self.members


def sync(
    record: SharedLimit | None,
    member: str,
    ratio: float,
    hold_for: float,
    initial: float,
    now: float,
    rules: SharingRules,
) -> tuple[SharedLimit, Share]:
    """One process's sync: `ratio` is its governor's limit now over its limit at its last
    sync (1.0: no change); `hold_for` how long it asks everyone to wait (0: no hold);
    `initial` the limit to start from when there is no record yet."""
    # Times past `now + member_ttl` mean the clock stepped back since they were written
    # (SQLite's and the memory store's wall clock): held to the horizon, a dead member
    # still runs out within one membership rather than after the step.
    horizon = now + rules.member_ttl
    members = {m: min(t, horizon) for m, t in (record.members if record else {}).items() if t > now}
    if record is None or not members:
        # Nobody is live (a first start, or an outage longer than the membership): start
        # again from the caller's view of the whole limit.
        # `initial` is the caller's limit now, its latest change included.
        record, ratio = SharedLimit(_clamp(initial, rules)), 1.0
    members[member] = now + rules.member_ttl
    record = replace(record, members=members)
    if hold_for > 0:
        record = replace(record, hold_until=max(record.hold_until, now + hold_for))
    record = _change(record, ratio, now, rules)
    ranked = sorted(members)
    share = Share(
        limit=record.limit,
        members=len(ranked),
        rank=ranked.index(member),
        hold_for=max(0.0, record.hold_until - now),
        measure_in=measure_in(now, rules.remeasure_every),
    )
    return record, share


def measure_in(now: float, every: float) -> float:
    """Seconds from `now` (the store's clock) to the group's next re-measurement."""
    if not math.isfinite(every) or every <= 0 or not math.isfinite(now):
        return math.inf
    return every - now % every


def leave(record: SharedLimit | None, member: str) -> SharedLimit | None:
    """A clean stop: the process's share goes to the others at their next sync."""
    if record is None:
        return None
    return replace(record, members={m: t for m, t in record.members.items() if m != member})


def _change(record: SharedLimit, ratio: float, now: float, rules: SharingRules) -> SharedLimit:
    if not math.isfinite(ratio) or ratio <= 0 or abs(ratio - 1.0) < 1e-9:
        return record
    direction = 1 if ratio > 1 else -1
    since = now - record.changed_at
    since = math.inf if since < 0 else since  # the clock stepped back: the window is over
    if since < rules.window and not (direction < 0 < record.direction):
        return record
    return replace(
        record,
        limit=_clamp(record.limit * ratio, rules),
        changed_at=now,
        direction=direction,
    )


def _clamp(limit: float, rules: SharingRules) -> float:
    return min(rules.max_limit, max(rules.min_limit, limit))
