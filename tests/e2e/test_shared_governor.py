"""Two gateway instances on one Redis share one governor limit: together they keep about
the origin's worker pool in flight, not twice it, and each reports its share."""

from __future__ import annotations

import re
import statistics
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.gateway import Gateway, wait_until
from support.origin import LoopbackOrigin
from support.redis import start_redis

WORKERS = 4
CONFIG = """
endpoints:
  "POST /pool/{id}": {managed: true, async: true}
log: {level: warning}
"""


def metric(g: Gateway, name: str) -> float:
    text = g.admin("GET", "/metrics").body.decode()
    found = re.search(rf"^{name} (\S+)", text, re.M)
    assert found, f"{name} missing"
    return float(found.group(1))


def burst(gateways: list[Gateway], n: int) -> None:
    def client(k: int) -> None:
        g = gateways[k % len(gateways)]
        for i in range(n // 4):
            resp = g.request("POST", f"/pool/{k}-{i}", b"{}")
            assert resp.status == 202, resp.body

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    redis = start_redis(workdir)
    yield redis.url
    redis.stop()


def start_pair(
    factory: Callable[..., Gateway], tmp_path: Path, redis_url: str, governor: str = "{}"
) -> list[Gateway]:
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG + f"governor: {governor}\n")
    gateways = [factory(config=str(config), store=redis_url) for _ in range(2)]
    wait_until(
        lambda: all(metric(g, "forebay_governor_members") == 2 for g in gateways),
        what="both instances to join the shared limit",
    )
    return gateways


def settled_peaks(origin: LoopbackOrigin, n: int) -> list[int]:
    """What the origin held at each arrival, once past the start."""
    wait_until(lambda: len(origin.pool_peaks) >= n, timeout=60, what=f"{n} deliveries")
    return origin.pool_peaks[len(origin.pool_peaks) // 4 :]


def test_two_instances_respect_one_limit(
    gateway_factory: Callable[..., Gateway],
    origin: LoopbackOrigin,
    tmp_path: Path,
    redis_url: str,
) -> None:
    # An origin with room for 16, a limit capped at 4: each instance alone would send
    # 4, the two together 8; sharing one limit, they send 4 in all.
    origin.pool_workers, origin.pool_service = 16, 0.05
    gateways = start_pair(gateway_factory, tmp_path, redis_url, "{max_limit: 4}")
    origin.pool_peaks.clear()
    burst(gateways, 200)
    settled = settled_peaks(origin, 200)
    # Each instance alone would send 4, the two 8. A sync delayed on a busy machine may
    # let one more through for a moment, not more.
    assert statistics.median(settled) <= 4 and sorted(settled)[len(settled) * 19 // 20] <= 5
    assert [metric(g, "forebay_governor_shared_limit") for g in gateways] == [4.0, 4.0]
    # The shares: 2 each, reported as the process's own limit.
    wait_until(
        lambda: [metric(g, "forebay_governor_limit") for g in gateways] == [2.0, 2.0],
        what="the shares 2 + 2",
    )


def test_worker_processes_on_one_sqlite_file_respect_one_limit(
    gateway_factory: Callable[..., Gateway], origin: LoopbackOrigin, tmp_path: Path
) -> None:
    origin.pool_workers, origin.pool_service = 16, 0.05
    config = tmp_path / "forebay.yaml"
    config.write_text(CONFIG + "governor: {max_limit: 4}\n")
    g = gateway_factory("--workers", "2", config=str(config))
    wait_until(lambda: metric(g, "forebay_governor_members") == 2, what="both workers to join")
    origin.pool_peaks.clear()
    burst([g], 200)
    settled = settled_peaks(origin, 200)
    assert statistics.median(settled) <= 4 and sorted(settled)[len(settled) * 19 // 20] <= 5
    assert metric(g, "forebay_governor_limit") == 4.0  # the workers' shares, summed


def test_two_instances_keep_one_pool_busy_not_two(
    gateway_factory: Callable[..., Gateway],
    origin: LoopbackOrigin,
    tmp_path: Path,
    redis_url: str,
) -> None:
    origin.pool_workers, origin.pool_service = WORKERS, 0.05
    gateways = start_pair(gateway_factory, tmp_path, redis_url)
    origin.pool_peaks.clear()
    burst(gateways, 400)
    settled = settled_peaks(origin, 400)
    assert statistics.median(settled) <= 2 * WORKERS, statistics.median(settled)
    shared = [metric(g, "forebay_governor_shared_limit") for g in gateways]
    assert all(WORKERS * 0.75 <= s <= WORKERS * 3 for s in shared), shared


def test_two_instances_relearn_an_origin_that_became_slower(
    gateway_factory: Callable[..., Gateway],
    origin: LoopbackOrigin,
    tmp_path: Path,
    redis_url: str,
) -> None:
    # The group re-measures the no-load latency together (every 12 s here, on Redis's
    # clock). A deploy then makes every request slower for good: re-measuring one at a
    # time under the other's load, the two would take it for queueing and cut down to a
    # few requests in flight; together they learn the new latency and keep the pool busy.
    workers = 16
    origin.pool_workers, origin.pool_service = workers, 0.03
    gateways = start_pair(gateway_factory, tmp_path, redis_url, "{remeasure_every: 12}")
    origin.pool_peaks.clear()
    sender = threading.Thread(target=burst, args=(gateways, 6000))
    sender.start()
    try:
        wait_until(lambda: len(origin.pool_peaks) >= 300, timeout=60, what="the flood")
        origin.pool_service = 0.05
        slowed = len(origin.pool_peaks)
        wait_until(
            lambda: len(origin.pool_peaks) >= slowed + 2500,
            timeout=120,
            what="2 500 deliveries after the slowdown",
        )
        after = origin.pool_peaks[slowed + 1500 : slowed + 2500]
    finally:
        sender.join()
    # Together they settle at 10 to 16 in flight on a busy machine (its noise reads as a
    # little queueing), where one at a time they fell to 2 to 4: half the pool tells the
    # two apart without depending on how busy the machine is.
    assert statistics.median(after) >= workers // 2, statistics.median(after)
