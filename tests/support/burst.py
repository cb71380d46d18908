"""A burst of client threads POSTing to gateways until each request is acknowledged, and the
bookkeeping of what was acknowledged: the crash and scale-out tests then check that all of it
reached the origin, per path in acceptance order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Self, TypeVar

from support.gateway import Gateway
from support.origin import Delivery

Acked = TypeVar("Acked")


class AckBurst(Generic[Acked]):
    """`clients` threads, each running `_client(t)`. What a test keeps of an acknowledged
    request (`Acked`) is recorded with `ack`, by the key it will be delivered with."""

    def __init__(self, clients: int) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, Acked] = {}  # delivery key -> what the origin must see
        self.order: dict[str, list[str]] = {}  # path -> delivery keys in acceptance order
        self.unanswered = 0
        self.unexpected: list[tuple[int, bytes]] = []
        self.threads = [
            threading.Thread(target=self._client, args=(t,), name=f"burst-{t}")
            for t in range(clients)
        ]

    def start(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def join(self) -> None:
        for t in self.threads:
            t.join(120)
        assert not any(t.is_alive() for t in self.threads), "clients did not finish"

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def ack(self, key: str, path: str, acked: Acked) -> None:
        """Record an acknowledged request; a replay acknowledges the same request again."""
        with self.lock:
            if key not in self.acked:
                self.acked[key] = acked
                self.order.setdefault(path, []).append(key)

    def no_answer(self) -> None:
        with self.lock:
            self.unanswered += 1

    def unexpected_answer(self, status: int, body: bytes) -> None:
        with self.lock:
            self.unexpected.append((status, body))

    def _client(self, t: int) -> None:
        raise NotImplementedError


def drained(g: Gateway) -> Callable[[], bool]:
    """Whether `g`'s queue is empty: nothing queued, nothing in flight."""

    def check() -> bool:
        counts: dict[str, int] = g.admin("GET", "/api/requests/counts").json()["counts"]
        return counts["queued"] + counts["in_flight"] == 0

    return check


def assert_delivered_once_in_order(
    acked: Mapping[str, tuple[str, bytes]], order: Mapping[str, list[str]], seen: Sequence[Delivery]
) -> int:
    """Every acknowledged request (by the key it is delivered with: its path and body)
    reached the origin, per path in acceptance order (`order`), and a body reached it twice
    only as the same request, with the same Idempotency-Key. The number of repeated
    deliveries."""
    keys_by_body: dict[bytes, set[str | None]] = {}
    first_delivery: dict[str, int] = {}
    for i, d in enumerate(seen):
        keys_by_body.setdefault(d.body, set()).add(d.key)
        if d.key is not None:
            first_delivery.setdefault(d.key, i)
    assert {b: k for b, k in keys_by_body.items() if len(k) != 1} == {}
    missing = [key for key in acked if key not in first_delivery]
    assert missing == [], f"{len(missing)} acknowledged requests never delivered"
    for key, (path, body) in acked.items():
        d = seen[first_delivery[key]]
        assert (d.path, d.body) == (path, body), key
    for path, keys in order.items():
        positions = [first_delivery[key] for key in keys]
        assert positions == sorted(positions), path
    return len(seen) - len(first_delivery)
