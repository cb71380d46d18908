"""Behaviour every EndpointStore backend shares."""

from __future__ import annotations

from pathlib import Path

from forebay.catalog.endpoint import CachePolicy, Endpoint, EndpointPolicy, endpoint_id
from forebay.store import Store, open_store


def make(method: str, path: str, **policy: object) -> Endpoint:
    return Endpoint(
        id=endpoint_id(method, path),
        method=method,
        path=path,
        policy=EndpointPolicy.model_validate(policy),
    )


async def test_save_get_list_round_trip(store: Store) -> None:
    a = make("POST", "/orders", managed=True, **{"async": True})
    b = make("GET", "/orders/{id}", managed=True, cache={"ttl": 30})
    await store.endpoints.save([a, b])
    assert await store.endpoints.get(a.id) == a
    got = await store.endpoints.get(b.id)
    assert got is not None and got.policy.cache == CachePolicy(ttl=30)
    assert sorted(e.id for e in await store.endpoints.list()) == sorted([a.id, b.id])
    assert await store.endpoints.get("ep_missing") is None


async def test_save_replaces_and_returned_records_are_copies(store: Store) -> None:
    a = make("GET", "/items")
    await store.endpoints.save([a])
    got = await store.endpoints.get(a.id)
    assert got is not None
    got.policy.managed = True  # changing a returned record changes nothing stored
    assert (await store.endpoints.get(a.id)) == a
    await store.endpoints.save([got])
    again = await store.endpoints.get(a.id)
    assert again is not None and again.policy.managed


async def test_version_moves_on_every_change(store: Store) -> None:
    v0 = await store.endpoints.version()
    a = make("GET", "/items")
    await store.endpoints.save([a])
    v1 = await store.endpoints.version()
    assert v1 != v0
    assert await store.endpoints.delete(a.id)
    v2 = await store.endpoints.version()
    assert v2 != v1
    assert not await store.endpoints.delete(a.id)
    assert await store.endpoints.version() == v2


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/forebay.db"
    s = await open_store(url)
    a = make("PUT", "/orders/{id}", managed=True, max_attempts=8)
    await s.endpoints.save([a])
    await s.close()
    assert (tmp_path / "sub/dir/forebay.db").exists()
    s = await open_store(url)
    assert await s.endpoints.get(a.id) == a
    await s.close()
