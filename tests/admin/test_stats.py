"""The live charts' numbers: rates from counters, quantiles from histogram buckets."""

from __future__ import annotations

import math

import pytest

from forebay.admin.stats import _Reading, quantile, sample_between


def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 answers up to 1 ms, 80 more up to 10 ms, 10 more up to 100 ms.
    buckets = {0.001: 10.0, 0.01: 90.0, 0.1: 100.0, math.inf: 100.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.001 + 0.009 * (40 / 80))
    assert quantile(buckets, 0.99) == pytest.approx(0.01 + 0.09 * (9 / 10))
    assert quantile({0.001: 0.0, math.inf: 0.0}, 0.5) is None
    assert quantile({}, 0.5) is None
    # Past the last finite bucket the best answer is its bound.
    assert quantile({0.1: 0.0, math.inf: 5.0}, 0.5) == 0.1


def test_sample_turns_counters_into_rates_and_ratios() -> None:
    old = _Reading(t=100.0, accepted=10, delivered=5, requests=100, errors=1, cache_all=10)
    new = _Reading(
        t=102.0,
        accepted=30,
        delivered=25,
        dead=2,
        requests=140,
        errors=5,
        cache_served=9,
        cache_all=20,
        queue_depth=7,
        governor_limit=16,
        in_flight=3,
        buckets={0.01: 4.0, math.inf: 4.0},
    )
    s = sample_between(old, new, old)
    assert (s.accepted_per_s, s.delivered_per_s, s.dead_per_s) == (10, 10, 1)
    assert s.requests_per_s == 20 and s.error_ratio == 0.1
    assert s.cache_hit_ratio == 0.9
    assert (s.queue_depth, s.governor_limit, s.in_flight) == (7, 16, 3)
    assert s.latency_p50_ms == pytest.approx(5.0) and s.latency_p99_ms is not None
    # No answers in the interval: no ratio rather than a made-up zero.
    idle = sample_between(new, new, new)
    assert idle.error_ratio is None and idle.cache_hit_ratio is None
    assert idle.latency_p50_ms is None
