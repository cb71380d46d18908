"""The governor against a real origin with a known worker pool: in flight stays near the
pool's size, without anyone telling the gateway what that size is."""

from __future__ import annotations

import re
import statistics
import threading
from collections.abc import Callable
from pathlib import Path

from support.gateway import Gateway, wait_until
from support.origin import LoopbackOrigin

WORKERS = 4
CONFIG = """
endpoints:
  "POST /pool/{id}": {managed: true, async: true}
governor: {enabled: %(governor)s}
async: {concurrency: 48}
log: {level: warning}
"""


def burst(g: Gateway, n: int) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(n // 4):
            resp = g.request("POST", f"/pool/{k}-{i}", b"{}")
            assert resp.status == 202, resp.body
            with lock:
                ids.append(resp.json()["id"])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids


def drain(g: Gateway, origin: LoopbackOrigin, n: int) -> None:
    wait_until(lambda: len(origin.pool_peaks) >= n, timeout=60, what=f"{n} deliveries")


def run(
    factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path, governor: bool
) -> list[int]:
    # 80 requests/s: well below what the gateway accepts even on a busy machine, so a
    # queue builds up and the fixed setting shows what it does with one.
    origin.pool_workers, origin.pool_service = WORKERS, 0.05
    config = tmp_path / f"governor-{governor}.yaml"
    config.write_text(CONFIG % {"governor": str(governor).lower()})
    g = factory(config=str(config))
    origin.pool_peaks.clear()
    burst(g, 400)
    drain(g, origin, 400)
    if governor:
        text = g.admin("GET", "/metrics").body.decode()
        limit = float(re.search(r"^forebay_governor_limit (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
        assert WORKERS * 0.75 <= limit <= WORKERS * 3, limit
    g.stop()
    return list(origin.pool_peaks)


def test_in_flight_stays_near_the_pool_size(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    governed = run(gateway_factory, origin, tmp_path, governor=True)
    fixed = run(gateway_factory, origin, tmp_path, governor=False)
    # What the origin held at each arrival, once past the start: near its 4 workers when
    # governed, near the fixed setting (48) when not.
    settled = governed[len(governed) // 4 :]
    assert statistics.median(settled) <= 2 * WORKERS, statistics.median(settled)
    assert statistics.median(fixed[len(fixed) // 4 :]) >= 20
