"""Response caching through the real process, in front of a real CRUD origin: hits,
read-after-write for every method (synchronous and asynchronous writes, never stale),
coalesced misses, 304s, stale-if-error, and misses that turn out not storable.

One gateway serves the module; each test keeps to collections of its own.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from support.crud import CrudOrigin
from support.gateway import Gateway, Response, wait_until

CONFIG = """
endpoints:
  "GET /{coll}": {managed: true, cache: {ttl: 300}}
  "GET /{coll}/{id}": {managed: true, cache: {ttl: 300}}
  "GET /{coll}/{id}/{sub}": {managed: true, cache: {ttl: 300}}
  "POST /{coll}/{id}/{sub}": {managed: true, invalidates: ["/{coll}/{id}"]}
  "GET /stream/{name}": {managed: true, cache: {ttl: 300}}
  "GET /short/{id}": {managed: true, cache: {ttl: 1, stale_if_error: 300}}
  "GET /async": {managed: true, cache: {ttl: 300}}
  "GET /async/{id}": {managed: true, cache: {ttl: 300}}
  "PUT /async/{id}": {managed: true, async: true}
  "PATCH /async/{id}": {managed: true, async: true}
  "DELETE /async/{id}": {managed: true, async: true}
  "POST /async": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2}
"""


@pytest.fixture(scope="module")
def g(crud_gateway: Callable[[str], Gateway]) -> Gateway:
    return crud_gateway(CONFIG)


def coll() -> str:
    return "c" + uuid.uuid4().hex[:8]


def body(resp: Response) -> Any:
    assert resp.status in (200, 201), (resp.status, resp.body)
    return json.loads(resp.body)


def write(g: Gateway, method: str, path: str, data: Any = None) -> Response:
    raw = json.dumps(data).encode() if data is not None else None
    headers = {"Content-Type": "application/json"} if raw is not None else {}
    return g.request(method, path, raw, headers)


def status_of(resp: Response) -> str:
    return resp.headers.get("cache-status", "")


def test_hit_headers_and_one_origin_read(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    crud.put(c, "1", {"name": "one"})
    first = g.request("GET", f"/{c}/1")
    assert body(first) == {"id": "1", "name": "one"}
    assert status_of(first) == "forebay; fwd=uri-miss; stored"
    assert first.headers["age"] == "0"  # fetched now: served from the entry just stored
    second = g.request("GET", f"/{c}/1")
    assert second.body == first.body
    assert status_of(second) == "forebay; hit"
    assert second.headers["age"].isdigit()
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    head = g.request("HEAD", f"/{c}/1")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(first.body))
    # Another spelling of the same key: query order and a trailing slash do not matter.
    g.request("GET", f"/{c}?b=2&a=1")
    assert status_of(g.request("GET", f"/{c}/?a=1&b=2")) == "forebay; hit"
    assert crud.reads_of(f"/{c}/1") == 1
    assert crud.reads_of(f"/{c}") == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_sync_write_then_read_is_never_stale(g: Gateway, crud: CrudOrigin, method: str) -> None:
    c = coll()
    crud.put(c, "1", {"name": "old"})
    # Both the item and its collection are cached.
    assert body(g.request("GET", f"/{c}/1"))["name"] == "old"
    assert body(g.request("GET", f"/{c}"))[0]["name"] == "old"
    assert status_of(g.request("GET", f"/{c}/1")) == "forebay; hit"
    if method == "POST":
        created = body(write(g, "POST", f"/{c}", {"name": "new"}))
        listed = body(g.request("GET", f"/{c}"))
        assert [r["name"] for r in listed] == ["old", "new"]
        # The Location it returned was invalidated too (had it been cached).
        assert body(g.request("GET", f"/{c}/{created['id']}"))["name"] == "new"
        return
    if method == "DELETE":
        assert write(g, "DELETE", f"/{c}/1").status == 204
        assert g.request("GET", f"/{c}/1").status == 404
        assert body(g.request("GET", f"/{c}")) == []
        return
    assert write(g, method, f"/{c}/1", {"name": "new"}).status == 200
    after = g.request("GET", f"/{c}/1")
    assert body(after)["name"] == "new"
    assert status_of(after) == "forebay; fwd=uri-miss; stored"
    assert body(g.request("GET", f"/{c}"))[0]["name"] == "new"
    assert status_of(g.request("GET", f"/{c}/1")) == "forebay; hit"


def test_invalidates_patterns_bound_with_path_parameters(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    crud.put(c, "7", {"name": "user"})
    assert "orders" not in body(g.request("GET", f"/{c}/7"))
    assert body(g.request("GET", f"/{c}/7/orders")) == []
    assert write(g, "POST", f"/{c}/7/orders", {"total": 5}).status == 201
    # POST /{coll}/{id}/{sub} invalidates its own path and, by its pattern, /{coll}/7.
    assert len(body(g.request("GET", f"/{c}/7/orders"))) == 1
    assert body(g.request("GET", f"/{c}/7"))["orders"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_async_write_is_never_stale(g: Gateway, crud: CrudOrigin, method: str) -> None:
    # The async endpoints live under /async; each test gets its own item id.
    item = uuid.uuid4().hex[:8]
    crud.put("async", item, {"name": "old"})
    path = f"/async/{item}"
    assert body(g.request("GET", path))["name"] == "old"
    assert body(g.request("GET", "/async"))  # the collection is cached too
    assert status_of(g.request("GET", path)) == "forebay; hit"
    crud.write_gate.close()  # delivery waits at the origin until we say
    try:
        target = "/async" if method == "POST" else path
        accepted = write(g, method, target, {"name": "new"} if method != "DELETE" else None)
        assert accepted.status == 202, accepted.body
        rid = accepted.json()["id"]
        wait_until(lambda: g.status_of(rid)["status"] == "in_flight", what="delivery started")
        # Accepted, not yet delivered: nothing cached may answer, and nothing is re-cached.
        for _ in range(2):
            during = g.request("GET", target)
            assert "hit" not in status_of(during).split("; "), status_of(during)
            assert "stored" not in status_of(during), status_of(during)
    finally:
        crud.write_gate.open()
    g.wait_status(rid)
    after = g.request("GET", path)
    if method == "DELETE":
        assert after.status == 404
    elif method == "POST":
        assert any(r.get("name") == "new" for r in body(g.request("GET", "/async")))
    else:
        assert body(after)["name"] == "new"
        assert status_of(after) == "forebay; fwd=uri-miss; stored"
        assert status_of(g.request("GET", path)) == "forebay; hit"


def test_an_async_write_invalidates_the_path_its_delivered_answer_names(
    g: Gateway, crud: CrudOrigin
) -> None:
    named, written = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    crud.put("async", named, {"name": "old"})
    crud.put("async", written, {"name": "other"})
    path = f"/async/{named}"
    assert body(g.request("GET", path))["name"] == "old"
    assert status_of(g.request("GET", path)) == "forebay; hit"
    crud.put("async", named, {"name": "new"})  # changed behind the gateway's back
    # The origin's answer to the delivered write names the cached path: known only once
    # it is delivered, so invalidated then.
    crud.extra_headers[f"/async/{written}"] = {"Location": path}
    accepted = write(g, "PUT", f"/async/{written}", {"name": "other"})
    assert accepted.status == 202, accepted.body
    g.wait_status(accepted.json()["id"])
    after = g.request("GET", path)
    assert body(after)["name"] == "new"
    assert status_of(after) == "forebay; fwd=uri-miss; stored"


def test_hundred_concurrent_misses_make_one_origin_request(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    crud.put(c, "1", {"name": "popular"})
    crud.write_gate.open()
    n = 100
    sent = threading.Semaphore(0)
    results: list[Response | BaseException] = []
    lock = threading.Lock()
    hold = threading.Event()

    def reader() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30)
            conn.request("GET", f"/{c}/1")
            sent.release()
            resp = conn.getresponse()
            r = Response(resp.status, resp.headers, resp.read())
            conn.close()
        except BaseException as e:
            r = e  # type: ignore[assignment]
            sent.release()
        with lock:
            results.append(r)

    # Hold the origin's answer: its first read waits until every client has sent.
    original = crud._answer

    def held_answer(request: Any, value: Any, key: str, coll_name: str) -> Any:
        hold.wait(30)
        return original(request, value, key, coll_name)

    crud._answer = held_answer  # type: ignore[method-assign]
    threads = [threading.Thread(target=reader) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for _ in range(n):
            assert sent.acquire(timeout=30)
        wait_until(lambda: crud.reads_of(f"/{c}/1") >= 1, what="the leader at the origin")
        # Round trips through the gateway's event loop: by their answers it has read the
        # requests that were sent before them.
        for _ in range(3):
            assert g.admin("GET", "/healthz").status == 200
    finally:
        hold.set()
        crud._answer = original  # type: ignore[method-assign]
    for t in threads:
        t.join(30)
    assert len(results) == n
    bad = [r for r in results if not isinstance(r, Response) or r.status != 200]
    assert not bad, bad[:3]
    assert {r.body for r in results if isinstance(r, Response)} == {results[0].body}  # type: ignore[union-attr]
    assert crud.reads_of(f"/{c}/1") == 1
    statuses = [status_of(r) for r in results if isinstance(r, Response)]
    assert statuses.count("forebay; fwd=uri-miss; stored") == 1
    assert statuses.count("forebay; hit; detail=coalesced") >= 1


def test_uncacheable_miss_lets_the_others_go_at_its_headers(g: Gateway, crud: CrudOrigin) -> None:
    name = uuid.uuid4().hex[:8]
    path = f"/stream/{name}"
    crud.stream_gate.close()
    results: list[Response] = []

    def reader() -> None:
        results.append(g.request("GET", path))

    threads = [threading.Thread(target=reader) for _ in range(6)]
    try:
        threads[0].start()
        wait_until(lambda: crud.reads_of(path) == 1, what="the first request at the origin")
        for t in threads[1:]:
            t.start()
        # The first answer's body is still held at the origin, yet the others reach it:
        # they were let go when its headers said no-store.
        wait_until(lambda: crud.reads_of(path) == 6, what="every request at the origin")
    finally:
        crud.stream_gate.open()
    for t in threads:
        t.join(30)
    assert [r.status for r in results] == [200] * 6
    assert {r.body for r in results} == {b"first part;last part"}
    assert all(status_of(r) == "forebay; fwd=uri-miss; detail=no-store" for r in results)


def test_conditional_requests_get_304_from_the_cache(g: Gateway, crud: CrudOrigin) -> None:
    c = coll()
    crud.put(c, "1", {"name": "etagged"})
    first = g.request("GET", f"/{c}/1")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = g.request("GET", f"/{c}/1", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag
    assert status_of(again) == "forebay; hit"
    since = g.request("GET", f"/{c}/1", headers={"If-Modified-Since": modified})
    assert since.status == 304
    other = g.request("GET", f"/{c}/1", headers={"If-None-Match": '"other"'})
    assert other.status == 200 and other.body == first.body
    # A client's validators on a miss are not passed on: the gateway fetches the whole
    # answer to store it, then answers the client 304 itself.
    c2 = coll()
    crud.put(c2, "1", {"name": "x"})
    tag = g.request("GET", f"/{c2}/1").headers["etag"]
    assert write(g, "PUT", f"/{c2}/1", {"name": "x"}).status == 200  # same body: same ETag
    miss = g.request("GET", f"/{c2}/1", headers={"If-None-Match": tag})
    assert miss.status == 304
    assert status_of(miss) == "forebay; fwd=uri-miss; stored"
    assert crud.reads_of(f"/{c}/1") == 1


def test_expired_entries_are_revalidated_with_the_origin(g: Gateway, crud: CrudOrigin) -> None:
    item = uuid.uuid4().hex[:8]
    crud.put("short", item, {"name": "short-lived"})
    path = f"/short/{item}"
    first = g.request("GET", path)
    assert status_of(first) == "forebay; fwd=uri-miss; stored"
    # ttl is 1 s: poll until the entry has expired and been revalidated (304 upstream).
    revalidated = wait_until(
        lambda: (r := g.request("GET", path)) and "fwd-status=304" in status_of(r) and r,
        what="a revalidation",
    )
    assert revalidated.status == 200 and revalidated.body == first.body
    assert status_of(revalidated) == "forebay; fwd=stale; fwd-status=304"
    assert crud.not_modified[path] >= 1


def test_stale_if_error_while_the_origin_is_down(g: Gateway, crud: CrudOrigin) -> None:
    item = uuid.uuid4().hex[:8]
    crud.put("short", item, {"name": "survivor"})
    path = f"/short/{item}"
    first = g.request("GET", path)
    assert status_of(first) == "forebay; fwd=uri-miss; stored"
    crud.down()
    try:
        stale = wait_until(
            lambda: (r := g.request("GET", path)) and "stale-if-error" in status_of(r) and r,
            what="a stale answer",
        )
        assert stale.status == 200 and stale.body == first.body
        assert int(stale.headers["age"]) >= 1
        # Never cached: nothing stands in, and the client gets the gateway's problem.
        assert g.request("GET", f"/short/{uuid.uuid4().hex[:8]}").status == 502
    finally:
        crud.up()
    wait_until(
        lambda: "stale-if-error" not in status_of(g.request("GET", path)), what="the origin back"
    )


def test_no_store_private_and_authorization_are_not_cached(g: Gateway, crud: CrudOrigin) -> None:
    for directive in ("no-store", "private"):
        c = coll()
        crud.cache_control[c] = directive
        crud.put(c, "1", {"name": directive})
        for _ in range(2):
            r = g.request("GET", f"/{c}/1")
            assert status_of(r) == f"forebay; fwd=uri-miss; detail={directive}"
        assert crud.reads_of(f"/{c}/1") == 2
    c = coll()
    crud.put(c, "1", {"name": "mine"})
    for _ in range(2):
        r = g.request("GET", f"/{c}/1", headers={"Authorization": "Bearer x"})
        assert status_of(r) == "forebay; fwd=uri-miss; detail=authorization"
    # The same resource without Authorization is cached as usual, and a request with it
    # is not answered from that entry.
    g.request("GET", f"/{c}/1")
    assert status_of(g.request("GET", f"/{c}/1")) == "forebay; hit"
    auth = g.request("GET", f"/{c}/1", headers={"Authorization": "Bearer x"})
    assert status_of(auth) != "forebay; hit"


def test_metrics_count_cache_results(g: Gateway) -> None:
    text = g.admin("GET", "/metrics").body.decode()
    for result in ("hit", "miss", "coalesced", "bypass", "revalidated", "stale"):
        assert f'forebay_cache_requests_total{{result="{result}"}}' in text, result
    assert "forebay_cache_size_bytes" in text
