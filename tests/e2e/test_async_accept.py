"""Asynchronous accept, through the real process: the 202, the status URL, the stored
response, idempotency keys, `Prefer`, cancelling, and a store that is full.

One gateway serves most of the module; each test keeps to paths of its own.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.gateway import ADMIN_TOKEN, Gateway, Response, assert_problem, wait_until
from support.origin import Delivery, LoopbackOrigin, Reply

CONFIG = """
endpoints:
  "POST /rec/a/{key}": {managed: true, async: true}
  "POST /rec/sync/{key}": {managed: true}
async:
  retry: {base: 0.05, cap: 0.2}
  max_wait: 1
"""
ID = re.compile(r"[0-9a-z]{36}")  # lower-case base32 of 22 bytes


@pytest.fixture(scope="module")
def g(
    module_gateway_factory: Callable[..., Gateway], tmp_path_factory: pytest.TempPathFactory
) -> Gateway:
    config = tmp_path_factory.mktemp("config") / "forebay.yaml"
    config.write_text(CONFIG)
    return module_gateway_factory(config=str(config))


def unique(name: str) -> str:
    return f"/rec/a/{name}-{uuid.uuid4().hex[:8]}"


def accepted(resp: Response) -> str:
    assert resp.status == 202, (resp.status, resp.body)
    rid: str = resp.json()["id"]
    return rid


def rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def deliveries_to(origin: LoopbackOrigin, path: str) -> list[Delivery]:
    return [d for d in origin.recorded() if d.path == path]


def test_202_shape_and_headers(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = unique("shape")
    before = time.time()
    resp = g.request("POST", path, b'{"n": 1}', {"Content-Type": "application/json"})
    assert resp.status == 202, resp.body
    body = resp.json()
    assert set(body) == {"id", "status", "status_url", "accepted_at"}
    assert ID.fullmatch(body["id"]), body["id"]
    assert body["status"] == "queued"
    assert body["status_url"] == f"/_forebay/requests/{body['id']}"
    assert resp.headers["location"] == body["status_url"]
    assert resp.headers["retry-after"] == "1"
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-request-id"]
    assert "preference-applied" not in resp.headers
    assert "idempotency-replayed" not in resp.headers
    assert before - 1 <= rfc3339(body["accepted_at"]) <= time.time() + 1
    # Without a key of the client's, the request id is the Idempotency-Key at delivery.
    wait_until(lambda: deliveries_to(module_origin, path), what="the delivery")
    # Ids sort by acceptance time (this one is accepted a few milliseconds later at least).
    second = g.request("POST", path, b'{"n": 2}').json()
    assert second["accepted_at"] > body["accepted_at"]
    assert second["id"] > body["id"]
    wait_until(lambda: len(deliveries_to(module_origin, path)) == 2, what="both deliveries")
    seen = deliveries_to(module_origin, path)
    assert [d.key for d in seen] == [body["id"], second["id"]]
    assert seen[0].body == b'{"n": 1}'
    assert seen[0].headers["content-type"] == "application/json"


def test_status_lifecycle(g: Gateway, module_origin: LoopbackOrigin) -> None:
    head, path = unique("life-head"), unique("life")
    lane = {"Forebay-Ordering-Key": f"life-{uuid.uuid4().hex}"}
    module_origin.script(head, Reply(200, body=b"head", delay=1.0))
    head_id = accepted(g.request("POST", head, b"first", lane))
    rid = accepted(g.request("POST", path, b"second", lane))

    # While the origin holds the head, it is in flight and the next one waits its turn.
    wait_until(lambda: deliveries_to(module_origin, head), what="the head to reach the origin")
    assert g.status_of(head_id)["status"] == "in_flight"
    doc = g.status_of(rid)
    assert doc["status"] == "queued"
    assert doc["attempts"] == [] and doc["response"] is None
    assert doc["method"] == "POST" and doc["target"] == path
    assert doc["endpoint"] == "POST /rec/a/{key}"
    assert doc["ordering_key"] == lane["Forebay-Ordering-Key"]
    assert doc["status_url"] == f"/_forebay/requests/{rid}"
    assert doc["next_attempt_at"] is not None
    early = g.request("GET", f"/_forebay/requests/{rid}/response")
    assert_problem(early, 404, "no-response-yet")

    done = g.wait_status(rid)
    assert [(a["number"], a["status"], a["error"]) for a in done["attempts"]] == [(1, 200, None)]
    attempt = done["attempts"][0]
    assert attempt["latency_ms"] is not None and attempt["latency_ms"] >= 0
    assert rfc3339(done["accepted_at"]) <= rfc3339(attempt["at"]) <= rfc3339(done["updated_at"])
    assert done["next_attempt_at"] is None
    assert done["response"]["status"] == 200
    assert done["response"]["body_encoding"] == "utf-8"
    assert done["response_url"] == f"/_forebay/requests/{rid}/response"
    # Delivered after the head had finished, never alongside it.
    first, second = deliveries_to(module_origin, head)[0], deliveries_to(module_origin, path)[0]
    assert first.done_at is not None and second.at >= first.done_at
    assert g.status_of(head_id)["status"] == "succeeded"


def test_stored_response_is_replayed_verbatim(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = unique("verbatim")
    blob = bytes(range(256)) * 3 + b"\x00\xff\xfe"
    module_origin.script(
        path,
        Reply(
            201,
            {
                "Location": "/things/42",
                "Content-Type": "application/octet-stream",
                "X-Thing": "a, b",
                "ETag": '"v7"',
            },
            blob,
        ),
    )
    rid = accepted(g.request("POST", path, b"make a thing"))
    doc = g.wait_status(rid)
    assert doc["response"]["status"] == 201
    assert doc["response"]["body_encoding"] == "base64"
    assert base64.b64decode(doc["response"]["body"]) == blob
    stored = {n.lower(): v for n, v in doc["response"]["headers"]}
    assert stored["location"] == "/things/42"

    for _ in range(2):  # as often as asked, the same answer
        resp = g.request("GET", f"/_forebay/requests/{rid}/response")
        assert resp.status == 201
        assert resp.body == blob
        assert resp.headers["location"] == "/things/42"
        assert resp.headers["content-type"] == "application/octet-stream"
        assert resp.headers["x-thing"] == "a, b"
        assert resp.headers["etag"] == '"v7"'
        assert resp.headers["date"] == stored["date"]
        assert resp.headers["content-length"] == str(len(blob))

    text_path = unique("verbatim-text")
    module_origin.script(text_path, Reply(200, {"Content-Type": "text/plain"}, "héllo".encode()))
    rid = accepted(g.request("POST", text_path))
    doc = g.wait_status(rid)
    assert doc["response"]["body_encoding"] == "utf-8"
    assert doc["response"]["body"] == "héllo"
    assert g.request("GET", f"/_forebay/requests/{rid}/response").body == "héllo".encode()


def test_idempotency_key_replays_before_and_after_completion(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    path = unique("idem")
    key = f"order-{uuid.uuid4()}"
    module_origin.script(path, Reply(201, {"X-Order": "7"}, b"created", delay=0.8))
    first = g.request("POST", path, b'{"sku": 1}', {"Idempotency-Key": key})
    rid = accepted(first)
    assert "idempotency-replayed" not in first.headers

    # While it is pending: the same 202, the same id, marked as a replay.
    again = g.request("POST", path, b'{"sku": 1}', {"Idempotency-Key": key})
    assert again.status == 202
    assert again.json()["id"] == rid
    assert again.headers["location"] == f"/_forebay/requests/{rid}"
    assert again.headers["idempotency-replayed"] == "true"

    # Once done: the origin's answer itself.
    g.wait_status(rid)
    done = g.request("POST", path, b'{"sku": 1}', {"Idempotency-Key": key})
    assert done.status == 201
    assert done.body == b"created"
    assert done.headers["x-order"] == "7"
    assert done.headers["idempotency-replayed"] == "true"
    assert done.headers["content-location"] == f"/_forebay/requests/{rid}/response"

    # Another payload under the same key is a client error, whatever differs.
    assert_problem(
        g.request("POST", path, b'{"sku": 2}', {"Idempotency-Key": key}),
        422,
        "idempotency-key-reused",
    )
    assert_problem(
        g.request("POST", path + "x", b'{"sku": 1}', {"Idempotency-Key": key}),
        422,
        "idempotency-key-reused",
    )
    assert_problem(
        g.request("POST", path, b'{"sku": 1}', {"Idempotency-Key": "k" * 300}),
        400,
        "bad-idempotency-key",
    )
    # The origin saw it once, with the client's key.
    seen = deliveries_to(module_origin, path)
    assert [(d.key, d.body) for d in seen] == [(key, b'{"sku": 1}')]


def test_concurrent_burst_with_one_key_stores_one_request(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    path = unique("burst")
    key = f"burst-{uuid.uuid4()}"
    module_origin.set_reply(path, Reply(200, body=b"once", delay=0.3))
    n = 20
    start = threading.Barrier(n)
    results: list[Response] = []
    lock = threading.Lock()

    def client() -> None:
        start.wait()
        resp = g.request("POST", path, b"same body", {"Idempotency-Key": key})
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == n
    fresh = [r for r in results if r.status == 202 and "idempotency-replayed" not in r.headers]
    assert len(fresh) == 1, [(r.status, dict(r.headers)) for r in results]
    rid = fresh[0].json()["id"]
    for r in results:
        if r.status == 202:
            assert r.json()["id"] == rid
        elif r.status == 409:
            assert_problem(r, 409, "idempotency-key-in-progress")
            assert r.headers["retry-after"]
        else:  # it was done before this one arrived: the stored answer
            assert (r.status, r.body) == (200, b"once"), (r.status, r.body)
            assert r.headers["idempotency-replayed"] == "true"
            assert r.headers["content-location"] == f"/_forebay/requests/{rid}/response"

    g.wait_status(rid)
    # Whoever got a 409 and tries again gets the one request's answer.
    retry = g.request("POST", path, b"same body", {"Idempotency-Key": key})
    assert (retry.status, retry.body, retry.headers["idempotency-replayed"]) == (
        200,
        b"once",
        "true",
    )
    assert [d.key for d in deliveries_to(module_origin, path)] == [key]
    stored = g.admin("GET", "/api/requests?limit=1000").json()
    assert [r["id"] for r in stored if r["target"] == path] == [rid]


def test_prefer_respond_async(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = f"/rec/sync/pa-{uuid.uuid4().hex[:8]}"
    # A managed endpoint without async answers synchronously...
    sync = g.request("POST", path, b"now")
    assert sync.status == 200 and b"delivery" in sync.body
    # ...unless the client prefers otherwise.
    resp = g.request("POST", path, b"later", {"Prefer": "respond-async"})
    rid = accepted(resp)
    assert resp.headers["preference-applied"] == "respond-async"
    assert g.wait_status(rid)["status"] == "succeeded"
    assert [d.body for d in deliveries_to(module_origin, path)] == [b"now", b"later"]
    assert deliveries_to(module_origin, path)[1].key == rid
    # Both: wait for the answer, else the 202.
    both = g.request("POST", path, b"both", {"Prefer": "respond-async, wait=1"})
    assert both.status == 200 and b"delivery" in both.body
    assert "wait=1" in both.headers["preference-applied"]
    # Unmanaged endpoints ignore the preference.
    echo = g.request("POST", "/echo/pa", b"x", {"Prefer": "respond-async"})
    assert echo.status == 200 and "preference-applied" not in echo.headers


def test_prefer_wait(g: Gateway, module_origin: LoopbackOrigin) -> None:
    # Answered within the wait: the origin's answer, as if synchronous.
    fast = unique("wait-fast")
    module_origin.script(fast, Reply(201, {"X-Made": "yes"}, b"made"))
    resp = g.request("POST", fast, b"x", {"Prefer": "wait=1"})
    assert (resp.status, resp.body) == (201, b"made")
    assert resp.headers["x-made"] == "yes"
    assert resp.headers["preference-applied"] == "wait=1"
    location = resp.headers["content-location"]
    assert re.fullmatch(r"/_forebay/requests/[0-9a-z]{36}/response", location), location
    assert g.request("GET", location).body == b"made"

    # Not answered within the wait: the 202, after about the wait.
    slow = unique("wait-slow")
    module_origin.script(slow, Reply(200, body=b"late", delay=2.5))
    t0 = time.monotonic()
    resp = g.request("POST", slow, b"x", {"Prefer": "wait=0.3"})
    took = time.monotonic() - t0
    rid = accepted(resp)
    assert 0.25 <= took < 2.0, took
    assert "preference-applied" not in resp.headers

    # A wait longer than async.max_wait (1 s here) is cut to it.
    slower = unique("wait-capped")
    module_origin.script(slower, Reply(200, body=b"late", delay=2.5))
    t0 = time.monotonic()
    resp = g.request("POST", slower, b"x", {"Prefer": "wait=30"})
    took = time.monotonic() - t0
    accepted(resp)
    assert 0.9 <= took < 2.4, took
    assert g.wait_status(rid)["response"]["body"] == "late"


def test_cancel_while_the_origin_is_down(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = unique("cancel")
    module_origin.down()
    try:
        head = accepted(g.request("POST", path, b"head"))
        by_client = accepted(g.request("POST", path, b"client"))
        by_admin = accepted(g.request("POST", path, b"admin"))
        by_cli = accepted(g.request("POST", path, b"cli"))

        resp = g.request("DELETE", f"/_forebay/requests/{by_client}")
        assert resp.status == 200, resp.body
        assert resp.json()["status"] == "cancelled"
        assert g.status_of(by_client)["status"] == "cancelled"
        assert_problem(g.request("DELETE", f"/_forebay/requests/{by_client}"), 409, "cannot-cancel")

        resp = g.admin("POST", f"/api/requests/{by_admin}/cancel")
        assert resp.status == 200 and resp.json()["status"] == "cancelled"

        out = g.cli("requests", "cancel", by_cli)
        assert out.returncode == 0 and f"{by_cli} cancelled" in out.stdout, out

        # The head is tried (and refused) now and then; between tries it is queued.
        wait_until(
            lambda: g.request("DELETE", f"/_forebay/requests/{head}").status == 200,
            what="the head to be cancelled between two delivery tries",
        )
        assert g.status_of(head)["status"] == "cancelled"
    finally:
        module_origin.up()
    after = accepted(g.request("POST", path, b"after"))
    g.wait_status(after)
    assert [d.body for d in deliveries_to(module_origin, path)] == [b"after"]
    for rid in (head, by_client, by_admin, by_cli):
        assert g.status_of(rid)["status"] == "cancelled"
    assert_problem(g.request("DELETE", f"/_forebay/requests/{after}"), 409, "cannot-cancel")
    assert g.admin("POST", f"/api/requests/{after}/cancel").status == 409
    assert g.status_of(after)["status"] == "succeeded"


def test_unknown_and_garbage_ids_are_404(g: Gateway) -> None:
    unknown = "a" * 36
    for path in (
        f"/_forebay/requests/{unknown}",
        f"/_forebay/requests/{unknown}/response",
        "/_forebay/requests/nope",
        "/_forebay/requests/" + "A" * 36,
        "/_forebay/requests/" + "a" * 37,
        "/_forebay/requests/%2e%2e%2fetc",
        f"/_forebay/requests/{unknown}/other",
        "/_forebay/requests/",
        "/_forebay/elsewhere",
    ):
        assert_problem(g.request("GET", path), 404, "no-such-request")
    assert_problem(g.request("DELETE", f"/_forebay/requests/{unknown}"), 404, "no-such-request")
    for method, path in (
        ("GET", f"/api/requests/{unknown}"),
        ("POST", f"/api/requests/{unknown}/cancel"),
        ("POST", f"/api/requests/{unknown}/replay"),
    ):
        assert g.admin(method, path).status == 404, path
    assert g.admin("GET", "/api/requests", token=None).status == 401
    assert g.admin("GET", "/api/requests", token=ADMIN_TOKEN + "x").status == 401


def test_callbacks_are_refused_without_a_secret(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = unique("nosecret")
    resp = g.request("POST", path, b"x", {"Forebay-Callback": f"{module_origin.url}/hooks/n"})
    body = assert_problem(resp, 400, "callback-refused")
    assert "secret" in body["detail"]
    assert deliveries_to(module_origin, path) == []


def fill_the_store(g: Gateway, path: str) -> dict[str, bytes]:
    """POST 30 kB bodies until the store is full: the acknowledged ids and their bodies."""
    acked: dict[str, bytes] = {}
    statuses = []
    for i in range(60):
        body = bytes([i]) * 30_000
        resp = g.request("POST", f"{path}-{i % 3}", body)
        statuses.append(resp.status)
        if resp.status == 202:
            acked[resp.json()["id"]] = body
            continue
        problem = assert_problem(resp, 503, "store-unavailable")
        assert resp.headers["retry-after"]
        assert "retry" in problem["detail"].lower()
        if statuses.count(503) >= 5:
            break
    assert set(statuses) == {202, 503}, statuses
    return acked


def small_store(factory: Callable[..., Gateway], workdir: Path) -> Gateway:
    config = workdir / "forebay.yaml"
    config.write_text(CONFIG)
    return factory(config=str(config), store=f"sqlite:///{workdir}/small.db?max_size=200KB")


def test_full_store_answers_503_and_delivers_what_it_accepted(
    module_gateway_factory: Callable[..., Gateway],
    module_origin: LoopbackOrigin,
    tmp_path: Path,
) -> None:
    small = small_store(module_gateway_factory, tmp_path)
    path = f"/rec/a/full-{uuid.uuid4().hex[:8]}"
    acked = fill_the_store(small, path)

    # Every request that was acknowledged is readable, and is delivered.
    for rid in acked:
        assert small.status_of(rid)["id"] == rid

    def states() -> dict[str, str]:
        return {rid: small.status_of(rid)["status"] for rid in acked}

    wait_until(
        lambda: set(states().values()) == {"succeeded"},
        timeout=10,
        what="every acknowledged request to be delivered",
        detail=states,
    )
    seen = {d.key: d.body for d in module_origin.recorded(path)}
    for rid, body in acked.items():
        assert seen.get(rid) == body, rid


def test_full_store_sigterm_exits_cleanly_and_keeps_what_it_accepted(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    small = small_store(gateway_factory, tmp_path)
    acked = fill_the_store(small, "/rec/a/full-term")
    code = small.stop()
    assert code == 0, small.output()[-3000:]
    small.restart()
    for rid in acked:
        assert small.status_of(rid)["id"] == rid
