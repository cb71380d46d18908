"""Every limiter backend admits exactly what the GCRA says, atomically, with an injected
clock; the Redis one against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.redis import RedisServer

from forebay.policy.gcra import Limit, decide_all, parse_rate
from forebay.store.limiter import Limiter, LimiterUnavailable, MemoryLimiter
from forebay.store.redis_limiter import RedisLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        lim: Limiter = MemoryLimiter()
    else:
        lim = RedisLimiter(redis_server.url, timeout=2.0, use_server_clock=False)
        await lim.client.flushdb()  # type: ignore[attr-defined]
    yield lim
    await lim.close()


async def test_burst_refusal_and_refill(limiter: Limiter) -> None:
    limit = parse_rate("2/s burst 3")
    got = [await limiter.acquire([("k", limit)], 1000.0) for _ in range(4)]
    assert [d[0].allowed for d in got] == [True, True, True, False]
    assert [d[0].remaining for d in got] == [2, 1, 0, 0]
    assert got[3][0].retry_after == pytest.approx(0.5, abs=1e-4)
    assert (await limiter.acquire([("k", limit)], 1000.5))[0].allowed
    assert not (await limiter.acquire([("k", limit)], 1000.5))[0].allowed


async def test_a_refused_request_charges_no_limit(limiter: Limiter) -> None:
    loose, tight = parse_rate("100/s"), parse_rate("1/m")
    both = [("loose", loose), ("tight", tight)]
    first = await limiter.acquire(both, 50.0)
    assert all(d.allowed for d in first)
    refused = await limiter.acquire(both, 50.0)
    assert refused[0].allowed and not refused[1].allowed
    # The loose bucket was not charged for the refused request: 98 left, not 97.
    alone = await limiter.acquire([("loose", loose)], 50.0)
    assert alone[0].remaining == 98


async def test_concurrent_requests_are_counted_atomically(limiter: Limiter) -> None:
    limit = parse_rate("10/m")
    results = await asyncio.gather(*(limiter.acquire([("c", limit)], 7.0) for _ in range(40)))
    assert sum(r[0].allowed for r in results) == 10


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 2, allow_nan=False)),
        min_size=1,
        max_size=30,
    )
)
def test_backends_agree_with_the_pure_gcra(
    redis_server: RedisServer, steps: list[tuple[str, float]]
) -> None:
    limits = {"a": Limit(3, 1.0, 2), "b": Limit(1, 1.0, 1)}

    async def run() -> None:
        redis = RedisLimiter(redis_server.url, timeout=2.0, use_server_clock=False)
        await redis.client.flushdb()
        memory = MemoryLimiter()
        tats: dict[str, float] = {}
        now = 100.0
        try:
            for key, gap in steps:
                now += gap
                checks = [(key, limits[key])]
                ok, expected = decide_all([(limits[key], tats.get(key))], now)
                if ok:
                    tats[key] = expected[0].tat
                for backend in (memory, redis):
                    got = (await backend.acquire(checks, now))[0]
                    assert got.allowed == expected[0].allowed
                    assert got.remaining == expected[0].remaining
                    assert got.retry_after == pytest.approx(expected[0].retry_after, abs=1e-4)
        finally:
            await redis.close()

    asyncio.run(run())


async def test_redis_uses_its_own_clock_by_default(redis_server: RedisServer) -> None:
    lim = RedisLimiter(redis_server.url, timeout=2.0)
    try:
        await lim.client.flushdb()
        limit = parse_rate("1/h")
        assert (await lim.acquire([("clock", limit)], 0.0))[0].allowed
        refused = (await lim.acquire([("clock", limit)], 0.0))[0]
        assert not refused.allowed and 3500 < refused.retry_after <= 3600
    finally:
        await lim.close()


async def test_an_unreachable_redis_is_reported_not_raised_raw() -> None:
    from support.origin import closed_port

    lim = RedisLimiter(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5)
    try:
        with pytest.raises(LimiterUnavailable):
            await lim.acquire([("x", parse_rate("1/s"))], 1.0)
    finally:
        await lim.close()
