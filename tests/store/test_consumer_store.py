"""Behaviour every ConsumerStore and ErrorLog backend shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from forebay.store import Store, open_store
from forebay.store.consumers import ApiKey, Consumer
from forebay.store.errors_log import CapturedError


def key(kid: str, consumer: str, at: float = 1.0) -> ApiKey:
    return ApiKey(id=kid, consumer=consumer, salt="00" * 16, digest="ab" * 32, created_at=at)


async def test_consumers_round_trip_and_version_moves(store: Store) -> None:
    v0 = await store.consumers.version()
    acme = Consumer(name="acme", rate_limit="100/s", endpoints=["GET /orders/**"], created_at=5)
    await store.consumers.save(acme)
    assert await store.consumers.version() != v0
    assert await store.consumers.get("acme") == acme
    assert [c.name for c in await store.consumers.list()] == ["acme"]
    assert await store.consumers.get("nobody") is None
    acme.rate_limit = None
    await store.consumers.save(acme)
    got = await store.consumers.get("acme")
    assert got is not None and got.rate_limit is None


async def test_keys_add_list_revoke_delete(store: Store) -> None:
    await store.consumers.save(Consumer(name="a"))
    await store.consumers.save(Consumer(name="b"))
    await store.consumers.add_keys([key("k1", "a", 1.0), key("k2", "a", 2.0), key("k3", "b")])
    assert [k.id for k in await store.consumers.keys("a")] == ["k1", "k2"]
    assert len(await store.consumers.keys()) == 3
    v = await store.consumers.version()
    assert await store.consumers.revoke_key("k1", 50.0)
    assert await store.consumers.version() != v
    k1 = await store.consumers.get_key("k1")
    assert k1 is not None and k1.revoked_at == 50.0 and not k1.active
    assert not await store.consumers.revoke_key("k1", 60.0)  # already revoked
    assert not await store.consumers.revoke_key("nope", 60.0)
    assert await store.consumers.delete_keys(["k2", "nope"]) == 1
    assert await store.consumers.delete("a")
    assert not await store.consumers.delete("a")
    assert [k.id for k in await store.consumers.keys()] == ["k3"]  # a's keys went with it


def test_consumer_fields_are_validated() -> None:
    for bad in ({"name": ""}, {"name": "has space"}, {"name": "a", "rate_limit": "lots"}):
        with pytest.raises(ValidationError):
            Consumer.model_validate(bad)
    with pytest.raises(ValidationError):
        Consumer(name="a", endpoints=["orders"])


def captured(endpoint_id: str, at: float, status: int = 502) -> CapturedError:
    return CapturedError(
        at=at,
        endpoint_id=endpoint_id,
        endpoint="GET /x",
        kind="origin-unreachable",
        status=status,
        request_id=f"r{at}",
        consumer="",
        method="GET",
        path="/x",
    )


async def test_error_log_keeps_the_newest_per_endpoint(store: Store) -> None:
    await store.errors.add([captured("ep_a", float(i)) for i in range(5)], keep=3)
    await store.errors.add([captured("ep_b", 10.0), captured("ep_a", 11.0)], keep=3)
    assert [e.at for e in await store.errors.recent("ep_a")] == [11.0, 4.0, 3.0]
    assert [e.at for e in await store.errors.recent()] == [11.0, 10.0, 4.0, 3.0]
    assert [e.at for e in await store.errors.recent(limit=1)] == [11.0]
    assert await store.errors.clear("ep_b") == 1
    assert await store.errors.clear() == 3
    assert await store.errors.recent() == []


async def test_sqlite_consumers_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/f.db"
    s = await open_store(url)
    await s.consumers.save(Consumer(name="acme"))
    await s.consumers.add_keys([key("k1", "acme")])
    await s.errors.add([captured("ep_a", 1.0)], keep=5)
    await s.close()
    s = await open_store(url)
    try:
        assert (await s.consumers.get("acme")) is not None
        assert [k.id for k in await s.consumers.keys("acme")] == ["k1"]
        assert len(await s.errors.recent()) == 1
    finally:
        await s.close()
