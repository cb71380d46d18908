"""What only the Redis store has: several instances on one server, its own URL parameters,
the size cap, and the persistence check. The behaviour every store shares runs on Redis
through the `store` fixture."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store.test_request_store import LEASE, OPS_SETTINGS, T0, TTL, _run, make, ok
from support.redis import RedisServer

from forebay.dispatch.model import RequestFilter
from forebay.errors import ConfigError
from forebay.store import open_store
from forebay.store.redis_conn import StoreConflict, StoreFull, parse_url
from forebay.store.redis_store import RedisStore


async def _open(url: str) -> RedisStore:
    s = await open_store(url)
    assert isinstance(s, RedisStore)
    return s


@pytest.fixture
async def fresh(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    s = await _open(redis_server.url)
    await s.client.flushdb()
    yield s
    await s.close()


@OPS_SETTINGS
@given(data=st.data())
def test_random_operations_keep_the_invariants_in_redis(
    redis_server: RedisServer, data: st.DataObject
) -> None:
    async def run() -> None:
        s = await _open(redis_server.url)
        try:
            await s.client.flushdb()
            await _run(s.requests, data)
        finally:
            await s.close()

    asyncio.run(run())


async def test_a_batch_is_all_or_nothing(fresh: RedisStore) -> None:
    rs = fresh.requests
    first = make("A", idem="i0")
    assert await rs.accept([first], TTL) == [None]
    doomed = [make("z", idem=f"d{i}") for i in range(50)]
    clash = dataclasses.replace(make("z"), id=first.id)
    with pytest.raises(StoreConflict):
        await rs.accept([*doomed, clash], TTL)
    assert (await rs.counts())["queued"] == 1
    assert await rs.get(doomed[0].id) is None
    assert await rs.key("alice", "d0", T0) is None


async def test_max_size_refuses_a_batch_and_keeps_delivering(redis_server: RedisServer) -> None:
    s = await _open(redis_server.url + "?max_size=4KB")
    try:
        await s.client.flushdb()
        rs = s.requests
        kept = make("A", body=b"x" * 1500)
        assert await rs.accept([kept], TTL) == [None]
        with pytest.raises(StoreFull):
            await rs.accept([make("B"), make("C", body=b"y" * 3000)], TTL)
        assert (await rs.counts())["queued"] == 1
        # A full store still delivers and records what it delivered; the sweep makes room.
        got = await rs.claim(T0, 10, "w1", T0 + LEASE)
        assert [r.id for r in got] == [kept.id]
        assert await rs.finish(kept.id, "w1", ok(T0), T0)
        assert await rs.sweep(T0 + 100, keep_done=10) == 1
        assert await rs.accept([make("C", body=b"y" * 3000)], TTL) == [None]
    finally:
        await s.close()


async def test_two_instances_never_claim_the_same_request(redis_server: RedisServer) -> None:
    one, two = await _open(redis_server.url), await _open(redis_server.url)
    try:
        await one.client.flushdb()
        batch = [make(f"k{i % 20}") for i in range(400)]
        for i in range(0, len(batch), 100):
            await one.requests.accept(batch[i : i + 100], TTL)
        delivered: dict[str, list[str]] = {}
        now = T0

        async def work(s: RedisStore, owner: str) -> int:
            n = 0
            while got := await s.requests.claim(now, 7, owner, now + LEASE):
                for r in got:
                    delivered.setdefault(r.ordering_key, []).append(r.id)
                done = await s.requests.finish_many([(r.id, ok(now)) for r in got], owner, now)
                assert all(done)
                n += len(got)
            return n

        counts = await asyncio.gather(work(one, "w1"), work(two, "w2"), work(one, "w3"))
        assert sum(counts) == len(batch)
        for key, ids in delivered.items():
            assert ids == [r.id for r in batch if r.ordering_key == key]  # once each, in order
        assert (await two.requests.counts())["succeeded"] == len(batch)
        assert await two.requests.lease_owners() == []
    finally:
        await one.close()
        await two.close()


async def test_a_dead_instances_lease_runs_out_and_another_takes_over(
    redis_server: RedisServer,
) -> None:
    gone, alive = await _open(redis_server.url), await _open(redis_server.url)
    try:
        await gone.client.flushdb()
        a1, a2 = make("A"), make("A")
        await gone.requests.accept([a1, a2], TTL)
        assert [r.id for r in await gone.requests.claim(T0, 5, "host:1:x", T0 + 10)] == [a1.id]
        await gone.close()  # it never finishes
        assert await alive.requests.claim(T0 + 9, 5, "host:2:y", T0 + 40) == []
        taken = await alive.requests.claim(T0 + 11, 5, "host:2:y", T0 + 40)
        assert [r.id for r in taken] == [a1.id] and taken[0].body == a1.body
        assert await alive.requests.lease_owners() == ["host:2:y"]
        assert await alive.requests.finish(a1.id, "host:2:y", ok(T0 + 12), T0 + 12)
        assert [r.id for r in await alive.requests.claim(T0 + 12, 5, "host:2:y", T0 + 40)] == [
            a2.id
        ]
    finally:
        await alive.close()


async def test_stores_with_other_prefixes_do_not_see_each_other(
    redis_server: RedisServer,
) -> None:
    one = await _open(redis_server.url)
    other = await _open(redis_server.url + "?prefix=tenant2:")
    try:
        await one.client.flushdb()
        r = make("A")
        await one.requests.accept([r], TTL)
        assert await other.requests.find(RequestFilter()) == []
        assert await other.requests.claim(T0, 5, "w", T0 + 5) == []
        assert [x.id for x in await one.requests.find(RequestFilter())] == [r.id]
        keys = {k.decode() async for k in one.client.scan_iter()}
        assert keys and all(k.startswith("forebay:") for k in keys)
    finally:
        await one.close()
        await other.close()


async def test_durability_follows_the_servers_persistence(fresh: RedisStore) -> None:
    c = fresh.client
    try:
        await c.config_set("appendonly", "no")
        d = await fresh.durability()
        assert d.durable is False and "appendonly is no" in d.detail
        await c.config_set("appendonly", "yes")
        await c.config_set("appendfsync", "everysec")
        d = await fresh.durability()
        assert d.durable is False and "everysec" in d.detail
        await c.config_set("appendfsync", "always")
        assert (await fresh.durability()).durable is True
    finally:
        await c.config_set("appendonly", "no")
        await c.config_set("appendfsync", "everysec")


def test_url_parameters_are_forebays_or_the_clients() -> None:
    u = parse_url("redis://h:6379/2?prefix=gw:&max_size=1MB&socket_timeout=3")
    assert (u.client_url, u.prefix, u.max_size) == (
        "redis://h:6379/2?socket_timeout=3",
        "gw:",
        10**6,
    )
    assert parse_url("redis://h/0").prefix == "forebay:"
    with pytest.raises(ConfigError):
        parse_url("redis://h/0?max_size=lots")


async def test_a_burst_waits_for_a_free_connection_rather_than_failing(
    redis_server: RedisServer,
) -> None:
    store = await _open(redis_server.url + "?max_connections=2&prefix=pool:")
    try:
        # Twenty-five commands at once on two connections: they queue for one.
        counts = await asyncio.gather(*(store.requests.counts() for _ in range(25)))
        assert len(counts) == 25
    finally:
        await store.close()


async def test_a_password_never_shows_in_errors() -> None:
    from support.origin import free_port

    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0?password=s3cret"
    with pytest.raises(RuntimeError, match="cannot reach Redis") as caught:
        await open_store(url)
    assert "s3cret" not in str(caught.value)


async def test_an_unreachable_redis_fails_at_open() -> None:
    from support.origin import free_port

    with pytest.raises(RuntimeError, match="cannot reach Redis"):
        await open_store(f"redis://127.0.0.1:{free_port()}/0")
