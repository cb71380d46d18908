"""Scale-out on one Redis, with nothing acknowledged lost: three real gateway processes
share a queue while one is killed with SIGKILL and another stopped with SIGTERM in the
middle of a burst, and a Redis server (AOF, `appendfsync always`) killed and restarted
under a burst."""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.burst import AckBurst, drained
from support.burst import assert_delivered_once_in_order as delivered_once_in_order
from support.gateway import Gateway, Response, request, wait_until
from support.origin import Delivery, LoopbackOrigin
from support.redis import RedisServer, start_redis

# A short lease, so that another instance takes a killed one's deliveries over within
# about a second instead of the default thirty.
CONFIG = """
endpoints:
  "POST /rec/scale/{key}": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2}
  concurrency: %(concurrency)d
  lease: 1.0
governor: {enabled: false}
"""

CONCURRENCY = 8
KEYS_PER_CLIENT = 4
IDEMPOTENT_EVERY = 7  # every seventh request of a client carries an Idempotency-Key


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server run as docs/redis.md asks: every write on disk before the answer."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = start_redis(workdir, aof=True)
    yield server
    server.stop()


def start_gateways(
    factory: Callable[..., Gateway], tmp_path: Path, store: str, n: int
) -> list[Gateway]:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG % {"concurrency": CONCURRENCY})
    return [factory(config=str(config), store=store) for _ in range(n)]


class Burst(AckBurst[tuple[str, bytes, str]]):
    """Client threads, each with its own ordering keys, that POST until each request is
    acknowledged, spreading their requests over the live gateways. A request that got no
    answer (its gateway died under it, or Redis was down) was not acknowledged: it is
    sent again to another gateway, as a new request (its body says which try it is), or,
    if it carries an Idempotency-Key, as the same request with the same key and body.
    Acknowledged: the Idempotency-Key the origin will see (the client's, or the request
    id) -> (path, body, request id)."""

    def __init__(self, gateways: list[Gateway], clients: int, per_client: int) -> None:
        super().__init__(clients)
        self.live = list(gateways)
        self.per_client = per_client
        self.refused = 0  # 503s and 409s, answered again later

    def drop(self, g: Gateway) -> None:
        with self.lock:
            self.live.remove(g)

    def _send(self, t: int, n: int, attempt: int) -> Response | None:
        path = f"/rec/scale/c{t}-k{n % KEYS_PER_CLIENT}"
        headers: dict[str, str] = {}
        doc: dict[str, object] = {"client": t, "n": n}
        if n % IDEMPOTENT_EVERY == 3:
            headers["Idempotency-Key"] = f"idem-c{t}-n{n}"
        else:
            doc["try"] = attempt
        with self.lock:
            g = self.live[(t + n + attempt) % len(self.live)]
        try:
            resp = request(g.port, "POST", path, json.dumps(doc).encode(), headers, timeout=15)
        except (OSError, http.client.HTTPException):
            self.no_answer()
            return None
        if resp.status in (503, 409):  # store unavailable, or the same key being accepted
            with self.lock:
                self.refused += 1
            return None
        if resp.status not in (200, 202):
            self.unexpected_answer(resp.status, resp.body)
            raise StopIteration
        rid = (
            resp.json()["id"]
            if resp.status == 202
            else resp.headers["content-location"].split("/")[-2]
        )
        key = headers.get("Idempotency-Key", rid)
        self.ack(key, path, (path, json.dumps(doc).encode(), rid))
        return resp

    def _client(self, t: int) -> None:
        for n in range(self.per_client):
            for attempt in range(1, 2000):
                try:
                    if self._send(t, n, attempt) is not None:
                        break
                except StopIteration:
                    return
                time.sleep(0.02)  # polling interval while a gateway or Redis is down


def assert_delivered_once_in_order(burst: Burst, seen: list[Delivery]) -> int:
    """The shared delivery checks, on what this burst keeps of each acknowledged request."""
    acked = {key: (path, body) for key, (path, body, _) in burst.acked.items()}
    return delivered_once_in_order(acked, burst.order, seen)


def assert_all_succeeded(burst: Burst, g: Gateway) -> None:
    def state(rid: str) -> str:
        resp = request(g.port, "GET", f"/_forebay/requests/{rid}", timeout=10)
        return str(resp.json()["status"]) if resp.status == 200 else f"HTTP {resp.status}"

    rids = [rid for _, _, rid in burst.acked.values()]
    with ThreadPoolExecutor(4) as pool:
        states = dict(zip(rids, pool.map(state, rids), strict=True))
    assert {rid: s for rid, s in states.items() if s != "succeeded"} == {}


def test_three_gateways_sigkill_and_sigterm_mid_burst_lose_nothing(
    gateway_factory: Callable[..., Gateway],
    origin: LoopbackOrigin,
    tmp_path: Path,
    aof_redis: RedisServer,
) -> None:
    origin.set_latency(0.002, 0.01, prefix="/rec/scale/")
    a, b, c = start_gateways(gateway_factory, tmp_path, aof_redis.url, 3)
    clients, per_client = 6, 500
    total = clients * per_client
    burst = Burst([a, b, c], clients, per_client).start()

    wait_until(lambda: burst.count() >= total * 3 // 10, timeout=60, what="30% acknowledged")
    # Deliveries of `a` are in flight when it dies: they stay leased to it until the
    # lease runs out, then another instance takes them over.
    wait_until(lambda: origin.recorded("/rec/scale/"), what="deliveries under way")
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    burst.drop(a)
    wait_until(lambda: burst.count() >= total * 6 // 10, timeout=60, what="60% acknowledged")
    assert b.stop(signal.SIGTERM) == 0  # a clean stop hands its leases back
    burst.drop(b)
    burst.join()

    assert burst.unexpected == []
    assert len(burst.acked) == total
    assert burst.unanswered > 0  # the stops did cut requests off
    wait_until(drained(c), timeout=60, what="the queue to drain")
    repeats = assert_delivered_once_in_order(burst, origin.recorded("/rec/scale/"))
    # Only what `a` had claimed when it died is delivered again: not a replay.
    assert repeats <= 4 * CONCURRENCY, repeats
    # Every request, whichever instance accepted it, is readable from the survivor.
    assert_all_succeeded(burst, c)


def test_a_redis_restart_with_aof_mid_burst_loses_nothing_acknowledged(
    gateway_factory: Callable[..., Gateway],
    origin: LoopbackOrigin,
    tmp_path: Path,
    aof_redis: RedisServer,
) -> None:
    origin.set_latency(0.002, 0.01, prefix="/rec/scale/")
    gateways = start_gateways(gateway_factory, tmp_path, aof_redis.url, 2)
    clients, per_client = 4, 300
    total = clients * per_client
    burst = Burst(gateways, clients, per_client).start()

    wait_until(lambda: burst.count() >= total * 4 // 10, timeout=60, what="40% acknowledged")
    # SIGKILL: Redis gets no chance to write anything more; only what it had put on disk
    # before answering survives.
    aof_redis.proc.kill()
    aof_redis.proc.wait(10)
    refused = burst.refused + burst.unanswered
    wait_until(lambda: burst.refused + burst.unanswered > refused, what="accepts to fail")
    assert aof_redis.workdir is not None
    aof_redis.proc = start_redis(aof_redis.workdir, aof=True, port=aof_redis.port).proc
    burst.join()

    # While Redis was down every write was refused with a 503 (and sent again), with or
    # without an Idempotency-Key: nothing else, and nothing acknowledged was lost.
    assert burst.unexpected == []
    assert len(burst.acked) == total
    wait_until(drained(gateways[0]), timeout=60, what="the queue to drain")
    repeats = assert_delivered_once_in_order(burst, origin.recorded("/rec/scale/"))
    assert repeats <= 2 * 2 * CONCURRENCY, repeats
    for g in gateways:
        assert_all_succeeded(burst, g)
