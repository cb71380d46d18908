"""The consumers and keys as the data plane sees them: an immutable snapshot, swapped
whole when the store's consumer version moves (like the catalog), so the hot path never
reads the store.

Finding a key's record is one dictionary lookup by its id (`policy/api_keys.key_id`);
checking it is one HMAC-SHA256 and a constant-time compare. Keys verified in the last
`cache_seconds` skip even that: they are remembered by the key itself, in memory only,
and forgotten when a new snapshot arrives, so a revoked key stops working within the
store polling interval, not the cache time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from forebay.catalog.catalog import Route
from forebay.policy import api_keys
from forebay.policy.gcra import Limit, parse_rate
from forebay.policy.patterns import matches, split_pattern
from forebay.store.consumers import ApiKey, Consumer

MAX_REMEMBERED = 10_000


@lru_cache(maxsize=4096)
def compiled_rate(text: str) -> Limit:
    """Rates are strings in policies; parsed once each."""
    return parse_rate(text)


@dataclass(frozen=True, slots=True)
class ConsumerEntry:
    name: str
    limit: Limit | None
    patterns: tuple[tuple[str, str], ...] | None  # None: every endpoint
    _allowed: dict[str, bool] = field(default_factory=dict, compare=False)

    def may_call(self, route: Route | None) -> bool:
        if self.patterns is None:
            return True
        if route is None:
            return False  # a consumer limited to endpoints has none outside the catalog
        known = self._allowed.get(route.endpoint_id)
        if known is None:
            known = any(matches(m, p, route.method, route.template) for m, p in self.patterns)
            self._allowed[route.endpoint_id] = known
        return known


class Keyring:
    def __init__(
        self,
        consumers: Iterable[Consumer] = (),
        keys: Iterable[ApiKey] = (),
        version: int = -1,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.version = version
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.consumers = {
            c.name: ConsumerEntry(
                c.name,
                compiled_rate(c.rate_limit) if c.rate_limit else None,
                tuple(split_pattern(p) for p in c.endpoints) if c.endpoints is not None else None,
            )
            for c in consumers
        }
        self._records = {
            k.id: (bytes.fromhex(k.salt), k.digest, k.consumer)
            for k in keys
            if k.active and k.consumer in self.consumers
        }
        self._verified: dict[str, tuple[ConsumerEntry, float]] = {}

    def __bool__(self) -> bool:
        """Whether there is any key to recognise."""
        return bool(self._records)

    def identify(self, key: str) -> ConsumerEntry | None:
        """The consumer a key belongs to, or None for an unknown or revoked key."""
        now = self.clock()
        seen = self._verified.get(key)
        if seen is not None and seen[1] > now:
            return seen[0]
        record = self._records.get(api_keys.key_id(key))
        if record is None or not api_keys.verify(key, record[0], record[1]):
            return None
        entry = self.consumers[record[2]]
        if self.cache_seconds > 0:
            if len(self._verified) >= MAX_REMEMBERED:
                self._verified.clear()
            self._verified[key] = (entry, now + self.cache_seconds)
        return entry


class KeyringRef:
    """The current snapshot; replaced whole, never mutated."""

    def __init__(self, ring: Keyring | None = None) -> None:
        self.current = ring or Keyring()
