"""What gateway processes on one Redis share besides the queue: the catalog (a toggle
through one instance's admin API reaches the others within a second) and the response
caches' invalidations (a write through one instance is never followed by a stale read
from another)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.crud import CrudOrigin
from support.gateway import Gateway, Response, wait_until
from support.redis import RedisServer

CONFIG = """
endpoints:
  "POST /rec/toggle/{key}": {managed: true}
  "GET /{coll}": {managed: true, cache: {ttl: 300}}
  "GET /{coll}/{id}": {managed: true, cache: {ttl: 300}}
  "PUT /{coll}/{id}": {managed: true}
  "GET /async/{id}": {managed: true, cache: {ttl: 300}}
  "PUT /async/{id}": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2}
"""


def start(
    factory: Callable[..., Gateway],
    tmp_path: Path,
    redis: RedisServer,
    n: int,
    origin_url: str | None = None,
) -> list[Gateway]:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG)
    store = f"{redis.url}?prefix={uuid.uuid4().hex[:8]}:"
    return [factory(config=str(config), store=store, origin_url=origin_url) for _ in range(n)]


@pytest.fixture
def crud() -> Iterator[CrudOrigin]:
    o = CrudOrigin().start()
    yield o
    o.stop()


def put(g: Gateway, path: str, doc: object) -> Response:
    return g.request("PUT", path, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def cache_status(resp: Response) -> str:
    return resp.headers.get("cache-status", "")


def test_a_toggle_through_one_admin_api_reaches_the_others_within_a_second(
    gateway_factory: Callable[..., Gateway], tmp_path: Path, redis_server: RedisServer
) -> None:
    a, b, c = start(gateway_factory, tmp_path, redis_server, 3)
    for g in (a, b, c):
        assert g.request("POST", "/rec/toggle/k", b"sync").status == 200
    (row,) = [r for r in a.admin("GET", "/api/endpoints?method=POST").json()]

    for flag, expected in ((True, 202), (False, 200)):
        changed = a.admin("PATCH", f"/api/endpoints/{row['id']}", {"async": flag})
        assert changed.status == 200, changed.body
        toggled = time.monotonic()
        for g in (b, c):
            wait_until(
                lambda g=g, expected=expected: (
                    g.request("POST", "/rec/toggle/k", b"x").status == expected
                ),
                timeout=5,
                what=f"async={flag} to reach the gateway on port {g.port}",
            )
        took = time.monotonic() - toggled
        assert took < 1.0, f"async={flag} took {took:.2f}s to reach every instance"


def test_a_write_through_one_instance_invalidates_the_others_caches(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    crud: CrudOrigin,
) -> None:
    a, b = start(gateway_factory, tmp_path, redis_server, 2, origin_url=crud.url)
    assert put(a, "/items/1", {"v": 1}).status == 200
    for path in ("/items/1", "/items"):
        # B's first read may be fetched before B has read A's invalidation, and is then
        # not stored ("invalidated"): the next one is.
        hit = wait_until(
            lambda path=path: (
                (r := b.request("GET", path)) and cache_status(r) == "forebay; hit" and r
            ),
            timeout=5,
            what=f"B to cache {path}",
        )
        assert b'"v":1' in hit.body.replace(b" ", b"")

    # A synchronous write through A: A answers once Redis has taken the invalidation, so
    # B has it in its connection already; B's reads see the write as soon as B has read
    # it (a read that reaches B in that instant may still be a hit: docs/caching.md).
    assert put(a, "/items/1", {"v": 2}).status == 200
    for path in ("/items/1", "/items"):
        wait_until(
            lambda path=path: b'"v":2' in b.request("GET", path).body.replace(b" ", b""),
            timeout=2,
            what=f"B to read the write of /items/1 at {path}",
        )

    # An operator's purge through A's admin API empties B's cache too (the purge answers
    # once A's own cache is empty; B applies it as soon as Redis relays it).
    assert b.admin("GET", "/api/cache").json()["entries"] > 0
    assert a.admin("POST", "/api/cache/purge", {"all": True}).status == 200
    wait_until(
        lambda: b.admin("GET", "/api/cache").json()["entries"] == 0,
        timeout=2,
        what="B's cache to be purged",
    )
    assert "hit" not in cache_status(b.request("GET", "/items/1"))


def test_an_accepted_async_write_holds_the_path_on_every_instance(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    crud: CrudOrigin,
) -> None:
    a, b = start(gateway_factory, tmp_path, redis_server, 2, origin_url=crud.url)
    crud.put("async", "7", {"v": 1})
    assert "stored" in cache_status(b.request("GET", "/async/7"))
    assert cache_status(b.request("GET", "/async/7")) == "forebay; hit"

    crud.write_gate.close()  # the delivery waits at the origin: the write is pending
    accepted = put(a, "/async/7", {"v": 2})
    assert accepted.status == 202, accepted.body
    pending = b.request("GET", "/async/7")
    assert "write-pending" in cache_status(pending), cache_status(pending)
    crud.write_gate.open()
    a.wait_status(accepted.json()["id"])

    # Delivered (by whichever instance): B sees the write, and caches again.
    def stored_fresh() -> bool:
        resp = b.request("GET", "/async/7")
        return "stored" in cache_status(resp) and b'"v":2' in resp.body.replace(b" ", b"")

    wait_until(stored_fresh, timeout=5, what="B to store the delivered write")
    assert cache_status(b.request("GET", "/async/7")) == "forebay; hit"


def test_a_lost_invalidation_channel_drops_the_cache(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    crud: CrudOrigin,
) -> None:
    (b,) = start(gateway_factory, tmp_path, redis_server, 1, origin_url=crud.url)
    crud.put("items", "3", {"v": 1})
    assert "stored" in cache_status(b.request("GET", "/items/3"))
    assert b.admin("GET", "/api/cache").json()["entries"] > 0
    # Redis drops every subscriber connection: whatever was published until B is
    # subscribed again is lost to it, so it must not keep serving what it had.
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as s:
        s.sendall(b"CLIENT KILL TYPE pubsub\r\n")
        assert s.recv(64).startswith(b":")
    wait_until(
        lambda: b.admin("GET", "/api/cache").json()["entries"] == 0,
        timeout=5,
        what="the cache to be dropped on resubscription",
    )
    assert "hit" not in cache_status(b.request("GET", "/items/3"))
