"""The governor, driven by a simulated origin whose capacity is physical: W workers, each
request holding one for S seconds, the rest waiting in the origin's queue."""

from __future__ import annotations

import heapq
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.simulated_origin import WorkerPoolOrigin

from forebay.policy.governor import Breaker, Governor, GovernorSettings
from forebay.policy.remeasure import FLOOR_WINDOWS


def flood(gov: Governor, origin: WorkerPoolOrigin, seconds: float) -> dict[str, list[float]]:
    """Keep the governor's allowance full for `seconds`; record what happened."""
    now = 0.0
    events: list[tuple[float, float]] = []  # (completion time, start time)
    trace: dict[str, list[float]] = {"limit": [], "latency": [], "done": []}
    while now < seconds:
        for _ in range(gov.available(now)):
            gov.started(now)
            heapq.heappush(events, (origin.admit(now), now))
        if not events:
            now += 0.001
            continue
        done, started = heapq.heappop(events)
        now = done
        gov.finished(now, done - started, 200)
        trace["limit"].append(gov.limit)
        trace["latency"].append(done - started)
        trace["done"].append(now)
    while events:  # let what is in flight finish, as it would
        done, started = heapq.heappop(events)
        gov.finished(done, done - started, 200)
    return trace


@pytest.mark.parametrize(("workers", "service"), [(4, 0.01), (16, 0.02), (32, 0.005), (64, 0.05)])
def test_converges_near_the_worker_count(workers: int, service: float) -> None:
    gov = Governor(GovernorSettings(), now=0.0)
    trace = flood(gov, WorkerPoolOrigin(workers, service), seconds=60.0)
    settled = trace["limit"][len(trace["limit"]) // 2 :]
    mean_limit = sum(settled) / len(settled)
    assert workers <= mean_limit <= 1.6 * workers, mean_limit
    # The origin stays busy: completions in the second half run at its capacity...
    half = [t for t in trace["done"] if t >= 30.0]
    assert len(half) / 30.0 >= 0.97 * workers / service
    # ...without a queue building inside it: latency stays near the service time.
    late = sorted(trace["latency"][len(trace["latency"]) // 2 :])
    assert late[len(late) // 2] <= 1.45 * service


@pytest.mark.parametrize("tail", [0.05, 0.1, 0.2])
@pytest.mark.parametrize(("workers", "service"), [(4, 0.01), (16, 0.02), (64, 0.05)])
def test_a_heavy_tail_of_slow_answers_is_not_read_as_queueing(
    workers: int, service: float, tail: float
) -> None:
    """Some requests take 10x S whatever the load. A window is judged by its median latency
    ratio, which such a tail barely moves; by the mean, even of ratios capped at 2, a tail
    of 10% read as queueing and held the limit below W (throughput 0.59 of capacity at W =
    64), and 20% drove it towards its floor (0.04)."""
    origin = WorkerPoolOrigin(workers, service, tail=tail)
    gov = Governor(GovernorSettings(), now=0.0)
    trace = flood(gov, origin, seconds=60.0)
    half = [t for t in trace["done"] if t >= 30.0]
    assert len(half) / 30.0 >= 0.95 * origin.capacity
    settled = trace["limit"][len(trace["limit"]) // 2 :]
    assert sum(settled) / len(settled) <= 1.6 * workers


@pytest.mark.parametrize(("workers", "service"), [(16, 0.05), (16, 0.02), (64, 0.05)])
def test_finds_the_capacity_in_round_trips_without_overshooting(
    workers: int, service: float
) -> None:
    """From a cold start (no-load measurement first, 0.25 s), slow start reaches W in
    round trips rather than windows, and stops near the knee: one step past it at most."""
    gov = Governor(GovernorSettings(), now=0.0)
    trace = flood(gov, WorkerPoolOrigin(workers, service), seconds=5.0)
    points = list(zip(trace["done"], trace["limit"], strict=True))
    reached = next(t for t, limit in points if limit >= workers)
    assert reached <= 0.25 + 40 * service, reached
    assert max(limit for _, limit in points) <= 1.3 * workers
    assert trace["limit"][-1] <= 1.3 * workers


class _StalledFor:
    """An origin whose answers reach the governor late for a moment: the gateway was
    busy taking in a burst of writes and got round to them a few milliseconds late."""

    def __init__(self, origin: WorkerPoolOrigin, start: float, end: float, delay: float) -> None:
        self.origin, self.start, self.end, self.delay = origin, start, end, delay

    def admit(self, now: float) -> float:
        done = self.origin.admit(now)
        return done + self.delay if self.start <= now < self.end else done


@pytest.mark.parametrize("stall_at", [0.3, 0.4, 0.5, 0.6, 0.7])
def test_one_late_window_does_not_end_the_first_climb(stall_at: float) -> None:
    """Answers 10% late for a window or two early in the climb: ending slow start there (with
    8 in flight where the origin has 16 workers) left the probe alone to find the rest,
    one request per couple of windows."""
    workers, service = 16, 0.05
    origin = _StalledFor(WorkerPoolOrigin(workers, service), stall_at, stall_at + 0.15, 0.005)
    gov = Governor(GovernorSettings(), now=0.0)
    trace = flood(gov, origin, seconds=5.0)  # type: ignore[arg-type]
    points = list(zip(trace["done"], trace["limit"], strict=True))
    reached = next(t for t, limit in points if limit >= workers)
    assert reached <= 0.25 + 40 * service, reached


def test_never_grows_while_the_limit_is_not_used() -> None:
    gov = Governor(GovernorSettings(initial_limit=20), now=0.0)
    now = 0.0
    for _ in range(2000):  # one request at a time, fast answers: no reason to grow
        gov.started(now)
        now += 0.001
        gov.finished(now, 0.001, 200)
    assert gov.limit <= 20


def measured(gov: Governor, latency: float = 0.01) -> float:
    """Complete the governor's first no-load measurement; returns the time it ended."""
    now = 0.0
    while gov.baselines == {}:
        gov.started(now)
        now += 0.05
        gov.finished(now, latency, 200)
    return now


def test_first_measures_the_no_load_latency_at_low_concurrency() -> None:
    gov = Governor(GovernorSettings(initial_limit=40, min_limit_probe=2), now=0.0)
    assert gov.allowed(0.0) == 2
    measured(gov, latency=0.02)
    assert gov.baselines == {"": pytest.approx(0.02)}
    assert gov.allowed(100.0) == 40


@pytest.mark.parametrize("status", [429, 503, None])
def test_overload_signals_cut_the_limit(status: int | None) -> None:
    gov = Governor(GovernorSettings(initial_limit=40, breaker_failures=100), now=0.0)
    now = measured(gov)
    for i in range(10):  # windows close at every second overload: five cuts
        gov.started(now + i)
        gov.finished(now + i, 0.01, status)
    assert gov.limit == pytest.approx(40 * 0.8**5)


def test_one_failing_request_among_many_answers_is_not_overload() -> None:
    gov = Governor(GovernorSettings(initial_limit=40), now=0.0)
    now = measured(gov)
    for i in range(400):  # a lane retrying a 503 now and then, among steady answers
        gov.started(now)
        now += 0.01
        gov.finished(now, 0.01, 503 if i % 20 == 0 else 200)
    assert gov.limit >= 40


def mix_shift(kinds: bool) -> tuple[Governor, float]:
    """An origin with spare capacity whose traffic moves from fast reads to slow reports
    at 20 s; returns the governor and its lowest limit in the 10 s after the shift."""
    gov = Governor(GovernorSettings(initial_limit=10, remeasure_every=1000.0), now=0.0)
    lowest = float("inf")
    rng = random.Random(3)
    now, started, events = 0.0, 0, []  # events: (done at, started at, kind)
    while now < 60.0:
        for _ in range(gov.available(now)):
            reports = rng.random() < (0.1 if now < 20.0 else 0.9)
            kind, latency = ("report", 0.5) if reports else ("read", 0.005)
            gov.started(now)
            heapq.heappush(events, (now + latency * rng.uniform(0.9, 1.1), now, kind))
            started += 1
        done, began, kind = heapq.heappop(events)
        now = done
        gov.finished(now, done - began, 200, kind=kind if kinds else "")
        if 20.0 <= now < 30.0:
            lowest = min(lowest, gov.limit)
    return gov, lowest


def test_latency_is_judged_per_kind() -> None:
    gov, lowest = mix_shift(kinds=True)
    assert set(gov.baselines) == {"read", "report"}
    assert lowest >= 10  # nothing queued, so nothing to cut


def test_one_baseline_for_all_would_mistake_a_mix_shift_for_queueing() -> None:
    assert mix_shift(kinds=False)[1] < 5  # why the governor keeps one per kind


def test_retry_after_pauses_sending() -> None:
    gov = Governor(GovernorSettings(), now=0.0)
    gov.started(1.0)
    gov.finished(1.0, 0.01, 503, retry_after=5.0)
    assert gov.allowed(3.0) == 0
    assert gov.allowed(5.9) == 0
    assert gov.allowed(6.0) >= 1


def test_retry_after_on_success_is_ignored() -> None:
    gov = Governor(GovernorSettings(), now=0.0)
    gov.started(1.0)
    gov.finished(1.0, 0.01, 200, retry_after=60.0)
    assert gov.allowed(1.5) >= 1


def test_breaker_opens_probes_and_closes_carefully() -> None:
    s = GovernorSettings(initial_limit=16, breaker_failures=3, cooldown=1.0)
    gov = Governor(s, now=0.0)
    for t in (0.1, 0.2, 0.3):
        gov.started(t)
        gov.finished(t, None, None)
    assert gov.breaker is Breaker.OPEN
    assert gov.allowed(0.5) == 0
    assert gov.allowed(1.4) == 1  # half-open: one probe
    assert gov.breaker is Breaker.HALF_OPEN
    gov.started(1.4)
    assert gov.available(1.4) == 0
    gov.finished(1.5, None, None)  # the probe fails: open again, longer
    assert gov.breaker is Breaker.OPEN
    assert gov.allowed(3.0) == 0
    assert gov.allowed(3.6) == 1
    gov.started(3.6)
    limit_before = gov.limit
    gov.finished(3.7, 0.01, 200)
    assert gov.breaker is Breaker.CLOSED
    assert gov.limit == pytest.approx(max(1.0, limit_before / 2))


def test_climbs_back_fast_after_a_cut() -> None:
    gov = Governor(GovernorSettings(initial_limit=64, breaker_failures=1000), now=0.0)
    origin = WorkerPoolOrigin(64, 0.01)
    flood(gov, origin, seconds=5.0)
    before = gov.limit
    for i in range(40):  # a burst of 503s: cut after cut
        gov.started(5.0 + i * 0.01)
        gov.finished(5.0 + i * 0.01, 0.01, 503)
    assert gov.limit < before / 4
    trace = flood_from(gov, WorkerPoolOrigin(64, 0.01), start=6.0, seconds=5.0)
    assert max(trace["limit"]) >= 0.8 * before  # seconds, not minutes


def test_recovers_after_the_breaker_closes() -> None:
    gov = Governor(GovernorSettings(breaker_failures=2), now=0.0)
    for t in (0.0, 0.1):
        gov.started(t)
        gov.finished(t, None, None)
    assert gov.breaker is Breaker.OPEN
    origin = WorkerPoolOrigin(16, 0.01)
    now = 2.0
    gov.allowed(now)  # half-open
    gov.started(now)
    gov.finished(now + 0.01, 0.01, 200)
    assert gov.breaker is Breaker.CLOSED
    trace = flood_from(gov, origin, start=now, seconds=30.0)
    assert trace["limit"][-1] >= 12


def flood_from(
    gov: Governor, origin: WorkerPoolOrigin, start: float, seconds: float
) -> dict[str, list[float]]:
    shifted = flood(_Shifted(gov, start), origin, seconds)  # type: ignore[arg-type]
    return shifted


class _Shifted:
    """The same governor seen from a clock that starts at zero."""

    def __init__(self, gov: Governor, offset: float) -> None:
        self.gov, self.offset = gov, offset

    @property
    def limit(self) -> float:
        return self.gov.limit

    def available(self, now: float) -> int:
        return self.gov.available(now + self.offset)

    def started(self, now: float) -> None:
        self.gov.started(now + self.offset)

    def finished(self, now: float, latency: float, status: int) -> None:
        self.gov.finished(now + self.offset, latency, status)


def test_remeasures_a_slower_origin() -> None:
    gov = Governor(GovernorSettings(remeasure_every=10.0), now=0.0)
    flood(gov, WorkerPoolOrigin(8, 0.01), seconds=20.0)
    assert gov.min_rtt is not None and gov.min_rtt < 0.013
    slower = WorkerPoolOrigin(8, 0.05)
    flood_from(gov, slower, start=20.0, seconds=40.0)
    assert gov.min_rtt is not None and gov.min_rtt > 0.04
    assert 6 <= gov.limit <= 16


@pytest.mark.parametrize("seed", range(30))
def test_an_origin_slower_for_good_is_relearnt_in_seconds(seed: int) -> None:
    """A deploy makes every request 30 ms -> 50 ms. Read as queueing, it cuts the limit
    to the floor; there, latency that stays high is no queue, and the governor
    re-measures at once instead of holding one request in flight until the periodic
    re-measurement (30 s): it did, at 20 requests a second for an origin that takes 320.
    Then it resumes near the limit it had, rather than slow-start from the floor: from
    there, with a window per 8 answers, it made it in time for 15 seeds of these 30."""
    gov = Governor(GovernorSettings(remeasure_every=30.0), now=0.0)
    flood(gov, WorkerPoolOrigin(16, 0.03, rng=random.Random(seed)), seconds=10.0)
    slower = WorkerPoolOrigin(16, 0.05, rng=random.Random(seed + 1000))
    trace = flood_from(gov, slower, start=10.0, seconds=12.0)
    assert gov.min_rtt is not None and gov.min_rtt > 0.045
    late = [t for t in trace["done"] if 8.0 <= t < 12.0]  # 18-22 s, before the periodic
    assert len(late) / 4.0 >= 0.9 * 16 / 0.05


@pytest.mark.parametrize(
    ("raises", "limit", "latency", "measures"),
    [
        (True, 1.0, 0.05, True),  # at the floor, and still slow: re-measure
        (True, 1.0, 0.03, False),  # at the floor, and not slow
        (True, 8.0, 0.05, False),  # not at the floor: cutting is the answer
        (False, 1.0, 0.05, False),  # a baseline may not rise (a group above its floor)
    ],
)
def test_queueing_that_stays_at_the_floor_brings_a_re_measurement_forward(
    raises: bool, limit: float, latency: float, measures: bool
) -> None:
    s = GovernorSettings(remeasure_every=1000.0, remeasure_raises=raises, min_limit=limit)
    gov = Governor(s, now=0.0)
    gov._measuring, gov.limit, gov.baselines[""] = False, limit, 0.03
    now = 0.0
    for _ in range(FLOOR_WINDOWS * s.min_samples):
        gov.started(now)
        now += latency
        gov.finished(now, latency, 200)
        now += s.window / s.min_samples
    assert gov._measuring is measures


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 2.0),
            st.one_of(st.none(), st.floats(0.0001, 5.0)),
            st.sampled_from([200, 201, 404, 429, 500, 503, None]),
        ),
        max_size=300,
    )
)
def test_limit_stays_within_bounds(events: list[tuple[float, float | None, int | None]]) -> None:
    s = GovernorSettings(min_limit=1, max_limit=200)
    gov = Governor(s, now=0.0)
    now = 0.0
    for step, latency, status in events:
        now += step
        gov.allowed(now)
        gov.started(now)
        gov.finished(now, latency, status)
        assert s.min_limit <= gov.limit <= s.max_limit
        assert gov.in_flight == 0
        assert gov.allowed(now) >= 0


def test_a_shared_governor_re_measuring_under_load_keeps_the_lower_baseline() -> None:
    """Several processes: one re-measuring at a low limit while the others keep sending
    sees their load; taking it for the no-load latency would creep the limit upward."""
    for raises, expected in ((True, 0.08), (False, 0.05)):
        s = GovernorSettings(window=0.1, remeasure_every=1.0, remeasure_raises=raises)
        g = Governor(s, now=0.0)
        g.baselines[""] = 0.05
        g._measuring = True
        now = 0.0
        for _ in range(s.min_samples):
            now += 0.02
            g.started(now)
            g.finished(now + 0.1, 0.08, 200)
        assert g.baselines[""] == expected, raises


@pytest.mark.parametrize(("raises", "baseline"), [(True, 0.03), (False, 0.02)])
def test_re_measuring_together_counts_only_what_was_sent_once_the_group_settled(
    raises: bool, baseline: float
) -> None:
    g = Governor(GovernorSettings(window=0.25), now=0.0)
    g._measuring, g.limit, g.baselines[""] = False, 16.0, 0.02  # past the first measurement
    assert g.remeasure_together(10.0, raises=raises, within=7.5)
    assert g.allowed(10.0) == 8 and g.target == 16.0  # half its limit
    for i in range(10):  # sent while the group's earlier load was still in the origin
        g.started(10.0 + i * 0.01)
        g.finished(10.05 + i * 0.01, 0.05, 200)
    assert g._measuring and g.baselines[""] == 0.02
    now = 10.3
    for _ in range(8):  # sent after it: the origin at no load, slower since a deploy
        g.started(now)
        now += 0.03
        g.finished(now, 0.03, 200)
    assert not g._measuring and g.limit == 16.0
    assert g.baselines[""] == pytest.approx(baseline)


def together(latency: float = 0.02) -> Governor:
    g = Governor(GovernorSettings(window=0.25), now=0.0)
    g._measuring, g.limit, g.baselines[""] = False, 16.0, latency
    g._ssthresh = 16.0  # past slow start
    return g


def test_a_group_measurement_under_way_is_not_restarted() -> None:
    g = together()
    assert g.remeasure_together(10.0, raises=True, within=7.5)
    assert not g.remeasure_together(10.5, raises=True, within=7.5)
    assert g._window.started == 10.25  # the first one's window, still settling


def test_an_origin_too_slow_to_measure_in_time_is_not() -> None:
    g = together(latency=1.0)
    g.limit = 2.0  # so one at a time: settle 2 s, then 8 answers, about 14 s
    assert not g.remeasure_together(10.0, raises=True, within=7.5)
    assert g.allowed(10.0) == 2 and not g._measuring
    g.remeasure_soon(10.0)  # alone, then, at min_limit_probe, after this window
    for i in range(8):
        g.started(10.0 + i * 0.1)
        g.finished(11.0 + i * 0.1, 1.0, 200)
    assert g._measuring and g.allowed(12.0) == 2


def test_a_group_measurement_not_over_in_time_is_given_up() -> None:
    g = together()
    assert g.remeasure_together(10.0, raises=True, within=7.5)
    g.started(10.3)
    g.finished(10.35, 0.05, 200)  # one answer: not enough for a window
    # It needs half a second (a window to settle, a window of answers): given up after 1.
    assert g.allowed(10.9) == 8
    assert g.allowed(11.0) == 16 and not g._measuring  # back to its limit
    assert g.baselines[""] == 0.02


def test_overloads_sent_before_the_group_settled_do_not_judge_its_window() -> None:
    g = together()
    assert g.remeasure_together(10.0, raises=True, within=7.5)
    for i in range(3):  # 503s to requests sent under the group's earlier load
        g.finished(10.1 + i * 0.01, 0.09, 503)
    now = 10.3
    for _ in range(8):
        g.started(now)
        now += 0.04
        g.finished(now, 0.02, 200)
    assert not g._measuring and g.target == 16.0  # no cut reported to the group
