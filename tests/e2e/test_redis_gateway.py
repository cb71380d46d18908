"""`--store redis://`: gateway processes sharing one real redis-server."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Callable
from pathlib import Path

from support.gateway import Gateway, wait_until
from support.origin import LoopbackOrigin
from support.redis import RedisServer, start_redis

CONFIG = """
endpoints:
  "POST /rec/shared/{key}": {managed: true, async: true}
"""


def _config(tmp_path: Path) -> str:
    path = tmp_path / "forebay.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_a_gateway_on_redis_delivers_and_warns_about_persistence(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    origin: LoopbackOrigin,
) -> None:
    store = redis_server.url + "?prefix=one:"
    g = gateway_factory(config=_config(tmp_path), store=store)
    resp = g.request("POST", "/rec/shared/a", body=b'{"n": 1}')
    assert resp.status == 202, (resp.status, resp.body)
    doc = g.wait_status(resp.json()["id"])
    assert doc["status"] == "succeeded", doc
    assert [d.body for d in origin.recorded("/rec/shared/")] == [b'{"n": 1}']
    # The test server runs without AOF: the gateway says so, loudly.
    assert "THE REDIS STORE MAY LOSE ACKNOWLEDGED REQUESTS" in g.output()
    assert "appendonly is no" in g.output()
    metrics = g.admin("GET", "/metrics").body.decode()
    assert "forebay_store_durable 0.0" in metrics
    # No endpoint caches: neither the accept nor the delivery published an invalidation.
    assert redis_server.command("EXISTS", "one:cache:seq") == b":0"


def test_two_gateways_share_one_queue_in_order_per_key(
    gateway_factory: Callable[..., Gateway],
    tmp_path: Path,
    redis_server: RedisServer,
    origin: LoopbackOrigin,
) -> None:
    store = redis_server.url + "?prefix=two:"
    config = _config(tmp_path)
    gateways = [gateway_factory(config=config, store=store) for _ in range(2)]
    origin.set_latency(0.0, 0.005)
    keys = [f"k{i}" for i in range(8)]
    sends = [(keys[i % len(keys)], i) for i in range(160)]

    def send(item: tuple[str, int]) -> tuple[str, int, str]:
        key, n = item
        g = gateways[n % len(gateways)]
        resp = g.request("POST", f"/rec/shared/{key}", body=str(n).encode())
        assert resp.status == 202, (resp.status, resp.body)
        return key, n, resp.json()["id"]

    # Per key, requests are sent one after another (acceptance order is the order the
    # client sees its 202s); keys go in parallel, spread over both gateways.
    def send_key(key: str) -> list[tuple[str, int, str]]:
        return [send(item) for item in sends if item[0] == key]

    with concurrent.futures.ThreadPoolExecutor(len(keys)) as pool:
        accepted = [x for got in pool.map(send_key, keys) for x in got]

    def all_delivered() -> bool:
        return len(origin.recorded("/rec/shared/")) >= len(accepted)

    wait_until(all_delivered, 60, "every accepted request to reach the origin")
    delivered = origin.recorded("/rec/shared/")
    bodies = [int(d.body) for d in delivered]
    assert sorted(bodies) == sorted(n for _, n, _ in accepted)  # each once
    for key in keys:
        got = [int(d.body) for d in delivered if d.path == f"/rec/shared/{key}"]
        assert got == [n for k, n, _ in accepted if k == key], key  # in order per key
    # Any instance answers for a request the other accepted.
    for _, n, rid in accepted[:10]:
        other = gateways[(n + 1) % len(gateways)]
        assert other.wait_status(rid)["status"] == "succeeded"


def test_a_gateway_stops_even_when_its_redis_hangs(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = start_redis(workdir)
    g = gateway_factory(config=_config(tmp_path), store=server.url)
    server.stop()
    # Something else now holds Redis's port: it takes connections and never answers.
    with socket.create_server(("127.0.0.1", server.port), backlog=128):
        started = time.monotonic()
        assert g.stop(timeout=60) == 0
        # The grace period (10 s) and the slack (5 s), plus a second per step left.
        assert time.monotonic() - started < 30
