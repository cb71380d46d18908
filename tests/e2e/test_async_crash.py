"""Nothing acknowledged is lost: the real process killed with SIGKILL in the middle of a
burst and restarted on the same store, and stopped with SIGTERM while deliveries are in
flight."""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support.burst import AckBurst, assert_delivered_once_in_order, drained
from support.gateway import Gateway, request, wait_until
from support.origin import LoopbackOrigin, Reply

CONFIG = """
endpoints:
  "POST /rec/crash/{key}": {managed: true, async: true}
  "POST /rec/slow/{key}": {managed: true, async: true}
async:
  retry: {base: 0.05, cap: 0.2}
  concurrency: %(concurrency)d
"""

CLIENTS = 4
PER_CLIENT = 500
KEYS_PER_CLIENT = 5
CONCURRENCY = 16


def start(
    factory: Callable[..., Gateway], tmp_path: Path, concurrency: int = CONCURRENCY
) -> Gateway:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG % {"concurrency": concurrency})
    return factory(config=str(config))


class Burst(AckBurst[tuple[str, bytes]]):
    """Client threads that POST until each request is acknowledged with a 202. A request
    that got no answer (the gateway died under it) was not acknowledged: it is sent
    again, as a new request, without an Idempotency-Key. Acknowledged: id -> (path, body)."""

    def __init__(self, g: Gateway) -> None:
        super().__init__(CLIENTS)
        self.g = g

    def _client(self, t: int) -> None:
        for n in range(PER_CLIENT):
            path = f"/rec/crash/c{t}-k{n % KEYS_PER_CLIENT}"
            for attempt in range(1, 1000):
                body = json.dumps({"client": t, "n": n, "try": attempt}).encode()
                try:
                    resp = request(self.g.port, "POST", path, body, timeout=15)
                except (OSError, http.client.HTTPException):
                    self.no_answer()
                    time.sleep(0.02)  # polling interval while the gateway is down
                    continue
                if resp.status != 202:
                    self.unexpected_answer(resp.status, resp.body)
                    return
                rid = resp.json()["id"]
                self.ack(rid, path, (path, body))
                break


def test_sigkill_twice_during_a_burst_loses_nothing_acknowledged(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    origin.set_latency(0.002, 0.02, prefix="/rec/crash/")
    g = start(gateway_factory, tmp_path)
    burst = Burst(g).start()
    total = CLIENTS * PER_CLIENT
    for threshold in (total * 3 // 10, total * 65 // 100):
        wait_until(lambda t=threshold: burst.count() >= t, timeout=60, what=f"{threshold} acks")
        assert g.stop(signal.SIGKILL) == -signal.SIGKILL
        g.restart()
    burst.join()
    assert burst.unexpected == []
    assert burst.count() == total
    assert burst.unanswered > 0  # the kills did cut requests off
    wait_until(drained(g), timeout=60, what="the queue to drain")

    seen = origin.recorded("/rec/crash/")
    # Every acknowledged request reached the origin (with its id as the key), per path in
    # acceptance order, and a repeated delivery is the same request with the same key.
    repeats = assert_delivered_once_in_order(burst.acked, burst.order, seen)
    # Only deliveries cut off by a crash are repeated, a few dozen per kill, not a replay
    # of the burst: those in flight (up to CONCURRENCY) and those answered whose outcome
    # was not yet stored (the recorder writes them in batches while the next deliveries
    # go out, `forebay/dispatch/recorder.py`: up to a commit's worth more). Five runs
    # alone saw 26 to 36 for the two kills; a replay would be hundreds.
    assert repeats <= 2 * 3 * CONCURRENCY, repeats

    def state(rid: str) -> str:
        resp = request(g.port, "GET", f"/_forebay/requests/{rid}", timeout=10)
        return str(resp.json()["status"]) if resp.status == 200 else f"HTTP {resp.status}"

    with ThreadPoolExecutor(4) as pool:
        states = dict(zip(burst.acked, pool.map(state, burst.acked), strict=True))
    assert {rid: s for rid, s in states.items() if s != "succeeded"} == {}


def test_sigkill_mid_delivery_redelivers_with_the_same_key(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    g = start(gateway_factory, tmp_path)
    path = "/rec/crash/inflight"
    origin.script(path, Reply(200, body=b"too late", delay=10))
    resp = g.request("POST", path, b"pay once", {"Idempotency-Key": "pay-7"})
    assert resp.status == 202
    rid = resp.json()["id"]
    wait_until(lambda: [d for d in origin.recorded() if d.path == path], what="the delivery")
    assert g.stop(signal.SIGKILL) == -signal.SIGKILL
    g.restart()
    doc = g.wait_status(rid)
    assert [a["status"] for a in doc["attempts"]] == [200]
    first, again = [d for d in origin.recorded() if d.path == path]
    assert first.done_at is None  # cut off by the crash
    assert (first.key, first.body) == (again.key, again.body) == ("pay-7", b"pay once")
    # The client's key still maps to the same request after the restart.
    replay = g.request("POST", path, b"pay once", {"Idempotency-Key": "pay-7"})
    assert replay.status == 200 and replay.headers["idempotency-replayed"] == "true"
    assert replay.headers["content-location"] == f"/_forebay/requests/{rid}/response"


def test_sigterm_finishes_deliveries_in_flight_and_keeps_the_rest(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    origin.set_latency(1.0, prefix="/rec/slow/")
    g = start(gateway_factory, tmp_path, concurrency=4)
    ids = [g.request("POST", f"/rec/slow/k{i}", str(i).encode()).json()["id"] for i in range(12)]
    wait_until(lambda: len(origin.recorded("/rec/slow/")) >= 4, what="4 deliveries in flight")
    t0 = time.monotonic()
    assert g.stop(signal.SIGTERM) == 0
    took = time.monotonic() - t0
    assert took < 10, took  # within the grace period

    started = origin.recorded("/rec/slow/")
    assert all(d.done_at is not None for d in started)  # every one was answered...
    out = g.cli("requests", "list", "--json", "--limit", "100")
    assert out.returncode == 0, out.stderr
    states = {r["id"]: r["status"] for r in json.loads(out.stdout)}
    delivered = {d.key for d in started}
    # ...and recorded; the others were handed back to the queue, not left in flight.
    assert {rid: states[rid] for rid in delivered} == dict.fromkeys(delivered, "succeeded")
    rest = set(ids) - delivered
    assert rest and {states[rid] for rid in rest} == {"queued"}

    g.restart()
    for rid in ids:
        g.wait_status(rid)
    keys = [str(d.key) for d in origin.recorded("/rec/slow/")]
    assert sorted(keys) == sorted(ids)  # each exactly once
