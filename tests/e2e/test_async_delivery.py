"""Delivery of accepted requests, through the real process: retries and their backoff,
dead letters and replaying them, order per key, an origin that goes away, and signed
completion callbacks.

One gateway serves most of the module; each test keeps to paths of its own.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.gateway import Gateway, Response, assert_problem, wait_until
from support.origin import Delivery, LoopbackOrigin, Reply

from forebay.policy.webhooks import verify

SECRET = "whsec_" + base64.b64encode(b"forebay-test-callback-secret-32b").decode()

CONFIG = """
endpoints:
  "POST /rec/d/{key}": {managed: true, async: true}
  "POST /rec/fragile/{key}": {managed: true, async: true, max_attempts: 2}
  "POST /rec/hold/{key}": {managed: true, async: true, max_attempts: 200}
  "POST /rec/down/{key}": {managed: true, async: true, max_attempts: 1}
  "POST /rec/order/{key}": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2, max_attempts: 4}
# Delivery semantics under a fixed concurrency: these tests script failures on purpose,
# which would (rightly) move the governor; tests/e2e/test_governor.py covers that.
governor: {enabled: false}
timeouts: {read: 0.5}
callbacks:
  secret: "%(secret)s"
  allow: ["127.0.0.1"]
"""

# Clients may name any host, but loopback and private addresses stay refused unless listed.
OPEN_CONFIG = """
endpoints:
  "POST /rec/cbdef/{key}": {managed: true, async: true, callback: "%(origin)s/hooks/default"}
  "POST /rec/cb2/{key}": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2}
callbacks:
  secret: "%(secret)s"
  allow: ["*"]
"""


@pytest.fixture(scope="module")
def g(
    module_gateway_factory: Callable[..., Gateway], tmp_path_factory: pytest.TempPathFactory
) -> Gateway:
    config = tmp_path_factory.mktemp("config") / "forebay.yaml"
    config.write_text(CONFIG % {"secret": SECRET})
    return module_gateway_factory(config=str(config))


@pytest.fixture(scope="module")
def open_gateway(
    module_gateway_factory: Callable[..., Gateway],
    module_origin: LoopbackOrigin,
    tmp_path_factory: pytest.TempPathFactory,
) -> Gateway:
    config = tmp_path_factory.mktemp("config") / "forebay.yaml"
    config.write_text(OPEN_CONFIG % {"secret": SECRET, "origin": module_origin.url})
    return module_gateway_factory(config=str(config))


def tag() -> str:
    return uuid.uuid4().hex[:8]


def accepted(resp: Response) -> str:
    assert resp.status == 202, (resp.status, resp.body)
    rid: str = resp.json()["id"]
    return rid


def to(origin: LoopbackOrigin, path: str) -> list[Delivery]:
    return [d for d in origin.recorded() if d.path == path]


def statuses(doc: dict[str, Any]) -> list[int | None]:
    return [a["status"] for a in doc["attempts"]]


def run_all(*targets: Callable[[], None]) -> None:
    """Run the functions on threads of their own; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


# -- retries ------------------------------------------------------------------------------


def test_retries_then_success(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = f"/rec/d/{tag()}-retry"
    module_origin.script(path, 503, 503, Reply(201, body=b"finally"))
    rid = accepted(g.request("POST", path, b'{"v": 1}', {"Content-Type": "application/json"}))
    doc = g.wait_status(rid)
    assert statuses(doc) == [503, 503, 201]
    assert [a["number"] for a in doc["attempts"]] == [1, 2, 3]
    assert doc["response"]["status"] == 201 and doc["response"]["body"] == "finally"
    seen = to(module_origin, path)
    assert len(seen) == 3
    # Every delivery is the same request: same key, body and headers.
    assert {d.key for d in seen} == {rid}
    assert {d.body for d in seen} == {b'{"v": 1}'}
    assert len({d.headers["traceparent"] for d in seen}) == 1
    assert {d.headers["content-type"] for d in seen} == {"application/json"}


def test_every_retryable_failure_is_retried(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = f"/rec/hold/{tag()}-retryable"
    # First the origin is too slow (timeouts.read is 0.5 s), then each retryable status.
    module_origin.script(path, Reply(200, delay=1.5), 408, 425, 429, 500, 502, 504, 201)
    rid = accepted(g.request("POST", path, b"x"))
    doc = g.wait_status(rid)
    assert statuses(doc) == [None, 408, 425, 429, 500, 502, 504, 201]
    assert "timeout" in doc["attempts"][0]["error"].lower(), doc["attempts"][0]
    assert [d.key for d in to(module_origin, path)] == [rid] * 8


def test_final_answers_are_not_retried(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = f"/rec/d/{tag()}-final"
    module_origin.script(path, Reply(422, {"Content-Type": "text/plain"}, b"bad sku"), 201)
    rid = accepted(g.request("POST", path, b"x"))
    doc = g.wait_status(rid, ("failed",))
    assert statuses(doc) == [422]
    resp = g.request("GET", f"/_forebay/requests/{rid}/response")
    assert (resp.status, resp.body) == (422, b"bad sku")
    moved = f"/rec/d/{tag()}-redirect"
    module_origin.script(moved, Reply(303, {"Location": "/elsewhere"}))
    rid = accepted(g.request("POST", moved, b"x"))
    assert statuses(g.wait_status(rid)) == [303]  # below 400: succeeded, not followed
    assert g.request("GET", f"/_forebay/requests/{rid}/response").headers["location"] == (
        "/elsewhere"
    )
    assert len(to(module_origin, path)) == len(to(module_origin, moved)) == 1


def test_retry_after_is_a_floor(g: Gateway, module_origin: LoopbackOrigin) -> None:
    path = f"/rec/d/{tag()}-retry-after"
    module_origin.script(path, Reply(503, {"Retry-After": "1"}), 201)
    rid = accepted(g.request("POST", path, b"x"))
    doc = g.wait_status(rid)
    assert statuses(doc) == [503, 201]
    first, second = to(module_origin, path)
    assert first.done_at is not None
    # The backoff alone would be at most 0.05 s here (base 0.05); the origin asked for 1 s.
    assert second.at - first.done_at >= 0.95, second.at - first.done_at


# -- dead letters -------------------------------------------------------------------------


def test_dead_after_max_attempts_and_replayed_through_the_admin_api(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    t = tag()
    fragile, plain = f"/rec/fragile/{t}", f"/rec/d/{t}-dead"
    module_origin.set_reply(fragile, 503)
    module_origin.set_reply(plain, 503)
    rid = accepted(g.request("POST", fragile, b"fragile"))
    other = accepted(g.request("POST", plain, b"plain"))
    doc = g.wait_status(rid, ("dead",))
    assert statuses(doc) == [503, 503]  # the endpoint's max_attempts: 2
    assert doc["response"]["status"] == 503
    assert statuses(g.wait_status(other, ("dead",))) == [503] * 4  # async.retry.max_attempts
    assert len(to(module_origin, fragile)) == 2 and len(to(module_origin, plain)) == 4

    dead = g.admin("GET", "/api/requests?state=dead&limit=1000").json()
    assert {rid, other} <= {r["id"] for r in dead}
    assert all(r["status"] == "dead" for r in dead)
    mine = next(r for r in dead if r["id"] == rid)
    assert (mine["attempts"], mine["target"], mine["method"]) == (2, fragile, "POST")
    by_endpoint = g.admin(
        "GET", f"/api/requests?state=dead&endpoint_id={mine['endpoint_id']}&limit=1000"
    ).json()
    assert rid in {r["id"] for r in by_endpoint} and other not in {r["id"] for r in by_endpoint}
    assert g.admin("GET", "/api/requests/counts").json()["counts"]["dead"] >= 2
    detail = g.admin("GET", f"/api/requests/{rid}").json()
    assert detail["status"] == "dead" and len(detail["attempts"]) == 2

    # The origin is mended; the operator replays one.
    module_origin.set_reply(fragile, None)
    module_origin.set_reply(plain, None)
    resp = g.admin("POST", f"/api/requests/{rid}/replay")
    assert resp.status == 200, resp.body
    assert resp.json()["status"] in ("queued", "in_flight", "succeeded")
    doc = g.wait_status(rid)
    assert statuses(doc) == [503, 503, 200]
    assert [a["number"] for a in doc["attempts"]] == [1, 2, 3]
    assert [d.key for d in to(module_origin, fragile)] == [rid] * 3
    assert g.admin("POST", f"/api/requests/{rid}/replay").status == 409
    # ...and then every dead one at once.
    replayed = g.admin("POST", "/api/requests/replay").json()["replayed"]
    assert replayed >= 1
    assert statuses(g.wait_status(other)) == [503] * 4 + [200]


def test_dead_requests_replayed_with_the_cli(g: Gateway, module_origin: LoopbackOrigin) -> None:
    t = tag()
    paths = [f"/rec/fragile/{t}-a", f"/rec/fragile/{t}-b", f"/rec/fragile/{t}-c"]
    for p in paths:
        module_origin.set_reply(p, 503)
    ids = [accepted(g.request("POST", p, p.encode())) for p in paths]
    for rid in ids:
        g.wait_status(rid, ("dead",))

    out = g.cli("requests", "list", "--state", "dead", "--json", "--limit", "1000")
    assert out.returncode == 0, out.stderr
    listed = {r["id"]: r for r in json.loads(out.stdout)}
    assert set(ids) <= set(listed)
    assert listed[ids[0]]["status"] == "dead" and listed[ids[0]]["attempts"] == 2
    out = g.cli("requests", "show", ids[0])
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["id"], shown["status"], shown["target"]) == (ids[0], "dead", paths[0])
    assert [a["status"] for a in shown["attempts"]] == [503, 503]
    assert g.cli("requests", "show", "a" * 36).returncode == 1

    for p in paths:
        module_origin.set_reply(p, None)
    # One by id...
    out = g.cli("requests", "replay", ids[0])
    assert out.returncode == 0 and "1 request(s) queued again" in out.stdout, out
    assert statuses(g.wait_status(ids[0])) == [503, 503, 200]
    out = g.cli("requests", "replay", ids[0])
    assert out.returncode == 1 and "not a dead request" in out.stderr + out.stdout, out
    # ...then all the dead.
    dead = len(g.admin("GET", "/api/requests?state=dead&limit=1000").json())
    assert dead >= 2
    out = g.cli("requests", "replay", "--dead")
    assert out.returncode == 0 and f"{dead} request(s) queued again" in out.stdout, out
    for rid in ids[1:]:
        assert statuses(g.wait_status(rid)) == [503, 503, 200]
    for p, rid in zip(paths, ids, strict=True):
        assert [d.key for d in to(module_origin, p)] == [rid] * 3


# -- order --------------------------------------------------------------------------------


def test_order_per_key_and_keys_in_parallel(g: Gateway, module_origin: LoopbackOrigin) -> None:
    t = tag()
    module_origin.set_latency(0.005, 0.03, prefix=f"/rec/order/{t}")
    keys = [f"/rec/order/{t}-k{i}" for i in range(5)]
    sent: dict[str, list[str]] = {k: [] for k in keys}
    # Two paths sharing one Forebay-Ordering-Key are one lane too.
    shared = [f"/rec/order/{t}-shared-a", f"/rec/order/{t}-shared-b"]
    shared_sent: list[str] = []

    def client(path: str) -> Callable[[], None]:
        def go() -> None:
            for n in range(30):
                sent[path].append(accepted(g.request("POST", path, f"{path} {n}".encode())))

        return go

    def shared_client() -> None:
        for n in range(20):
            resp = g.request(
                "POST", shared[n % 2], str(n).encode(), {"Forebay-Ordering-Key": f"cust-{t}"}
            )
            shared_sent.append(accepted(resp))

    run_all(*(client(k) for k in keys), shared_client)
    wait_until(
        lambda: len(module_origin.recorded(f"/rec/order/{t}-")) >= 170,
        what="all 170 deliveries",
        detail=lambda: len(module_origin.recorded(f"/rec/order/{t}-")),
    )
    seen = module_origin.recorded(f"/rec/order/{t}-")
    assert len(seen) == 170 and len({d.key for d in seen}) == 170  # each exactly once
    lanes = {k: [d for d in seen if d.path == k] for k in keys}
    lanes["shared"] = [d for d in seen if d.path in shared]
    sent["shared"] = shared_sent
    for name, lane in lanes.items():
        # Acceptance order, and one at a time: each after the previous one was answered.
        assert [d.key for d in lane] == sent[name], name
        for before, after in itertools.pairwise(lane):
            assert before.done_at is not None and after.at >= before.done_at, name
    # Different keys were delivered at the same time.
    everything = sorted(seen, key=lambda d: d.at)
    overlapping = sum(
        1
        for a, b in itertools.pairwise(everything)
        if a.path != b.path and a.done_at is not None and b.at < a.done_at
    )
    assert overlapping >= 5, overlapping


def test_a_failing_key_holds_back_only_its_own_requests(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    t = tag()
    stuck, free = f"/rec/hold/{t}-stuck", f"/rec/hold/{t}-free"
    module_origin.set_reply(stuck, 503)
    head = accepted(g.request("POST", stuck, b"1"))
    behind = accepted(g.request("POST", stuck, b"2"))
    others = [accepted(g.request("POST", free, str(n).encode())) for n in range(5)]
    for rid in others:
        g.wait_status(rid)
    wait_until(lambda: len(to(module_origin, stuck)) >= 3, what="the head to be retried")
    assert {d.key for d in to(module_origin, stuck)} == {head}
    assert g.status_of(behind)["status"] == "queued"
    assert g.status_of(behind)["attempts"] == []
    assert set(statuses(g.status_of(head))) == {503}

    module_origin.set_reply(stuck, None)
    g.wait_status(head)
    g.wait_status(behind)
    keys = [d.key for d in to(module_origin, stuck)]
    assert keys[-2:] == [head, behind] and keys.count(behind) == 1
    assert [d.key for d in to(module_origin, free)] == others


# -- the origin away ----------------------------------------------------------------------


def refused_twice(g: Gateway, heads: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        return all(len(g.status_of(h)["attempts"]) >= 2 for h in heads)

    return check


def test_origin_down_while_accepting_then_up_delivers_everything(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    t = tag()
    # Five paths, one ordering key: one lane, so the order is known across the paths.
    paths = [f"/rec/down/{t}-p{i}" for i in range(5)]  # max_attempts: 1 on this endpoint
    lane = {"Forebay-Ordering-Key": f"down-{t}"}
    module_origin.down()
    try:
        ids = [accepted(g.request("POST", paths[n % 5], f"{n}".encode(), lane)) for n in range(50)]
        # The head is tried and refused, more often than max_attempts would allow if
        # refusals counted.
        wait_until(refused_twice(g, ids[:1]), what="the head to be tried twice while down")
        doc = g.status_of(ids[0])
        assert doc["status"] in ("queued", "in_flight")
        assert all(a["status"] is None and "connect" in a["error"] for a in doc["attempts"])
    finally:
        module_origin.up()

    def states() -> dict[str, int]:
        counts: dict[str, int] = {}
        for rid in ids:
            state = g.status_of(rid)["status"]
            counts[state] = counts.get(state, 0) + 1
        return counts

    wait_until(lambda: states() == {"succeeded": 50}, what="all 50 delivered", detail=states)
    seen = [d for d in module_origin.recorded(f"/rec/down/{t}-")]
    assert [d.key for d in seen] == ids  # each once, in acceptance order
    assert [d.body for d in seen] == [str(n).encode() for n in range(50)]
    assert statuses(g.status_of(ids[0]))[-1] == 200


def test_delivery_resumes_promptly_when_the_origin_returns(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    """docs/async.md: while the origin refuses, the dispatcher probes with one request,
    pausing 0.25 s and doubling up to 5 s; a returning origin is noticed within 5 s, and
    then every lane flows. (A gateway of its own: a long pause would hold up other tests.)"""
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG % {"secret": SECRET})
    g: Gateway = gateway_factory(config=str(config))
    paths = [f"/rec/down/k{i}" for i in range(5)]
    ids: dict[str, list[str]] = {p: [] for p in paths}
    origin.down()
    try:
        for n in range(4):
            for p in paths:
                ids[p].append(accepted(g.request("POST", p, f"{n}".encode())))
        wait_until(
            lambda: sum(len(g.status_of(ids[p][0])["attempts"]) for p in paths) >= 3,
            what="three refused probes while the origin is down",
        )
    finally:
        origin.up()
    back = time.monotonic()
    everything = [rid for p in paths for rid in ids[p]]

    def late() -> dict[str, str]:
        return {rid: g.status_of(rid)["status"] for rid in everything} | {
            "seconds since the origin came back": f"{time.monotonic() - back:.1f}"
        }

    wait_until(
        lambda: all(g.status_of(rid)["status"] == "succeeded" for rid in everything),
        timeout=7,
        what="delivery to resume within a few seconds of the origin coming back",
        detail=late,
    )
    for p in paths:
        assert [d.key for d in to(origin, p)] == ids[p]


# -- callbacks ----------------------------------------------------------------------------


def hooks_to(origin: LoopbackOrigin, path: str) -> list[Any]:
    return [h for h in origin.received_hooks() if h.path == path]


def verified(hook: Any) -> dict[str, Any]:
    h = hook.headers
    ts = int(h["webhook-timestamp"])
    assert verify(SECRET, h["webhook-id"], ts, hook.body, h["webhook-signature"], time.time())
    # A changed body, another secret or an old timestamp do not verify.
    assert not verify(SECRET, h["webhook-id"], ts, hook.body + b" ", h["webhook-signature"], ts)
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-b!!").decode()
    assert not verify(other, h["webhook-id"], ts, hook.body, h["webhook-signature"], ts)
    assert not verify(SECRET, h["webhook-id"], ts, hook.body, h["webhook-signature"], ts + 3600)
    assert h["content-type"].startswith("application/json")
    event: dict[str, Any] = json.loads(hook.body)
    assert event["type"] == "request.completed"
    when = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    assert abs(when - ts) < 2
    return event


def test_callback_signed_and_verified(g: Gateway, module_origin: LoopbackOrigin) -> None:
    t = tag()
    hook = f"/hooks/{t}-ok"
    path = f"/rec/d/{t}-cb"
    rid = accepted(g.request("POST", path, b"x", {"Forebay-Callback": module_origin.url + hook}))
    got = wait_until(lambda: hooks_to(module_origin, hook), what="the callback")
    assert len(got) == 1
    assert got[0].headers["webhook-id"] == f"msg_{rid}"
    event = verified(got[0])
    assert event["data"]["id"] == rid and event["data"]["status"] == "succeeded"
    assert event["data"]["response"]["status"] == 200
    wait_until(lambda: g.status_of(rid)["callback"] == "delivered", what="callback: delivered")
    # The data is the status document as it stands on completion: with the attempt.
    doc = g.status_of(rid)
    assert event["data"]["attempts"] == doc["attempts"], (event["data"], doc)
    assert statuses(event["data"]) == [200]
    assert event["data"]["updated_at"] == doc["updated_at"]
    # The callback header is the gateway's: the origin never sees it.
    assert "forebay-callback" not in to(module_origin, path)[0].headers


def test_callback_of_a_failure_is_retried_until_taken(
    g: Gateway, module_origin: LoopbackOrigin
) -> None:
    t = tag()
    hook, path = f"/hooks/{t}-retry", f"/rec/d/{t}-cbfail"
    module_origin.script(hook, 500)  # the receiver fails once
    module_origin.script(path, Reply(422, body=b"no"))
    rid = accepted(g.request("POST", path, b"x", {"Forebay-Callback": module_origin.url + hook}))
    wait_until(lambda: len(hooks_to(module_origin, hook)) >= 2, what="the callback, twice")
    got = hooks_to(module_origin, hook)
    assert [h.headers.get("content-length") is not None for h in got] == [True, True]
    assert {h.headers["webhook-id"] for h in got} == {f"msg_{rid}"}  # receivers dedupe by it
    for h in got:
        event = verified(h)
        assert event["data"]["status"] == "failed"
        assert event["data"]["response"]["status"] == 422
    wait_until(lambda: g.status_of(rid)["callback"] == "delivered", what="callback: delivered")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/hooks/x",  # loopback by name, not listed
        "http://10.0.0.1/hooks/x",
        "http://evil.example.net/hooks/x",
        "ftp://127.0.0.1:{port}/hooks/x",
        "http://user:pw@127.0.0.1:{port}/hooks/x",
        "not a url",
    ],
)
def test_callback_hosts_not_allowed_are_refused(
    g: Gateway, module_origin: LoopbackOrigin, url: str
) -> None:
    path = f"/rec/d/{tag()}-refused"
    resp = g.request("POST", path, b"x", {"Forebay-Callback": url.format(port=module_origin.port)})
    assert_problem(resp, 400, "callback-refused")
    stored = g.admin("GET", "/api/requests?limit=1000").json()
    assert path not in {r["target"] for r in stored}


def test_loopback_callbacks_refused_unless_listed(
    open_gateway: Gateway, module_origin: LoopbackOrigin
) -> None:
    """`allow: ["*"]` lets clients name any host, but what a name or address leads to is
    checked again when sending: loopback is refused, as it is not listed itself."""
    t = tag()
    port = module_origin.port
    by_ip = accepted(
        open_gateway.request(
            "POST",
            f"/rec/cb2/{t}-ip",
            b"x",
            {"Forebay-Callback": f"http://127.0.0.1:{port}/hooks/{t}-ip"},
        )
    )
    by_name = accepted(
        open_gateway.request(
            "POST",
            f"/rec/cb2/{t}-name",
            b"x",
            {"Forebay-Callback": f"http://localhost:{port}/hooks/{t}-name"},
        )
    )
    by_default = accepted(open_gateway.request("POST", f"/rec/cbdef/{t}", b"x"))
    for rid in (by_ip, by_name, by_default):
        open_gateway.wait_status(rid)
        wait_until(
            lambda rid=rid: open_gateway.status_of(rid)["callback"] == "refused",
            what=f"the callback of {rid} to be refused",
            detail=lambda rid=rid: open_gateway.status_of(rid)["callback"],
        )
    assert [h.path for h in module_origin.received_hooks() if t in h.path] == []
    assert hooks_to(module_origin, "/hooks/default") == []


def test_ordering_none_lets_creates_to_one_collection_go_in_parallel(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    # A gateway of its own with a fixed concurrency: what is tested is the lanes, not
    # where the governor stands after the other tests.
    config = tmp_path / "forebay.yaml"
    config.write_text(
        'endpoints:\n  "POST /rec/free": {managed: true, async: true, ordering: none}\n'
        "governor: {enabled: false}\n"
    )
    g: Gateway = gateway_factory(config=str(config))
    origin.set_latency(0.1, 0.1, prefix="/rec/free")
    ids = [accepted(g.request("POST", "/rec/free", str(n).encode())) for n in range(8)]
    assert {g.status_of(i)["ordering_key"] for i in ids} == set(ids)
    wait_until(
        lambda: sum(d.done_at is not None for d in origin.recorded("/rec/free")) >= 8,
        what="all eight deliveries answered",
    )
    seen = sorted(origin.recorded("/rec/free"), key=lambda d: d.at)
    overlapping = sum(
        1 for a, b in itertools.pairwise(seen) if a.done_at is not None and b.at < a.done_at
    )
    assert overlapping >= 3, overlapping
