"""Where cached answers live, behind a small protocol.

`ResponseCache` is process-local and synchronous on purpose: a hit is a dictionary
lookup, never a network round trip. What several gateway instances must share is not
the answers but the invalidations, so a shared deployment keeps one local cache per
instance and broadcasts invalidations. `python -m bench.cache_store` measures a hit
served from here against one fetched from Redis; docs/caching.md has its figures and
the reasons for the choice. `MemoryResponseCache` is the local cache, bounded in bytes,
LRU.

Entries are found by primary key (`path?sorted-query`, see `policy.cache_keys`); one key
holds the variants of a resource (per `Vary` values and consumer). Invalidation works on
paths: a path covers all its query strings.

Two mechanisms keep a write from being undone by a read that raced it:

- generations: every invalidation bumps a counter and notes it per path; a fetch that
  started before a path was invalidated does not store what it got;
- holds: an accepted asynchronous write holds its paths until its delivery completes;
  nothing is stored for a held path meanwhile.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from forebay.policy.cache_keys import path_of
from forebay.policy.invalidation import Targets, pattern_matches

# Beyond the body and headers, what an entry costs in memory, roughly.
ENTRY_OVERHEAD = 400
MAX_VARIANTS = 16  # per key; the oldest goes first
MAX_REMEMBERED_PATHS = 10_000  # per-path generations kept before a conservative reset


@dataclass(slots=True)
class CachedResponse:
    """A stored GET answer. `headers` are end-to-end and without Content-Length, Age and
    the gateway's own; the gateway adds those when it serves the entry."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stored_at: float
    ttl: float
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    initial_age: float = 0.0
    etag: str | None = None
    last_modified: str | None = None
    consumer: str | None = None  # None: public, for every consumer
    vary: tuple[str, ...] = ()
    vary_values: tuple[str | None, ...] = ()
    shared_with_authorization: bool = False
    endpoint_id: str | None = None
    size: int = 0
    # Serving memo: the full header list for one whole-second age (it changes once a second).
    memo_age: int = -1
    memo_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.size:
            self.size = (
                len(self.body) + sum(len(n) + len(v) for n, v in self.headers) + ENTRY_OVERHEAD
            )


if TYPE_CHECKING:
    from forebay.catalog.catalog import Catalog


class ResponseCache(Protocol):
    size_bytes: int
    generation: int

    def lookup(self, key: str) -> list[CachedResponse] | None:
        """The variants stored under `key` (most recently used now), or None."""

    def put(self, key: str, entry: CachedResponse) -> None:
        """Store `entry`, replacing the variant with the same consumer and Vary values."""

    def invalidate(self, targets: Targets) -> int:
        """Drop every entry on these paths or matching these patterns; how many."""

    def purge_endpoint(self, endpoint_id: str) -> int: ...

    def clear(self) -> int: ...

    def hold(self, token: str, targets: Targets, until: float) -> None:
        """Store nothing on these paths until `release(token)` or `until` (Unix time)."""

    def release(self, token: str) -> None: ...

    def holding(self, token: str) -> bool:
        """Whether `token` (an accepted write's id) holds paths, here or, shared, anywhere."""

    def storable(self, path: str, since_generation: int, now: float) -> bool:
        """Whether an answer fetched since `since_generation` may be stored for `path`:
        not invalidated since, and not held."""

    def __len__(self) -> int: ...


class MemoryResponseCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self.generation = 0
        self._entries: OrderedDict[str, list[CachedResponse]] = OrderedDict()
        self._keys_by_path: dict[str, set[str]] = {}
        self._invalidated: dict[str, int] = {}  # path -> generation of its last invalidation
        self._floor = 0  # fetches started before this generation never store
        self._holds: dict[str, tuple[Targets, float]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __bool__(self) -> bool:
        # Asked on every write; no key is kept without an entry, so no need to count them.
        return bool(self._entries)

    def lookup(self, key: str) -> list[CachedResponse] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, entry: CachedResponse) -> None:
        variants = self._entries.get(key)
        if variants is not None:
            for i, old in enumerate(variants):
                if old.consumer == entry.consumer and old.vary_values == entry.vary_values:
                    self.size_bytes -= old.size
                    del variants[i]
                    break
        if entry.size > self.max_bytes:
            # Too large to keep; the older answer it replaces must not be served instead.
            if variants is not None and not variants:
                self._drop(key)
            return
        if variants is None:
            variants = self._entries[key] = []
            self._keys_by_path.setdefault(path_of(key), set()).add(key)
        else:
            self._entries.move_to_end(key)
        if len(variants) >= MAX_VARIANTS:
            self.size_bytes -= variants.pop(0).size
        variants.append(entry)
        self.size_bytes += entry.size
        while self.size_bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            if oldest != key:
                self._drop(oldest)
            else:  # only this key is left: its older variants go, the new entry fits
                self.size_bytes -= variants.pop(0).size

    def _drop(self, key: str) -> int:
        variants = self._entries.pop(key, None)
        if variants is None:
            return 0
        self.size_bytes -= sum(v.size for v in variants)
        path = path_of(key)
        keys = self._keys_by_path.get(path)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_by_path[path]
        return len(variants)

    def _drop_path(self, path: str) -> int:
        return sum(self._drop(key) for key in list(self._keys_by_path.get(path, ())))

    def _bump(self, paths: Iterable[str], everything: bool) -> None:
        self.generation += 1
        if everything or len(self._invalidated) > MAX_REMEMBERED_PATHS:
            self._invalidated.clear()
            self._floor = self.generation
        else:
            for path in paths:
                self._invalidated[path] = self.generation

    def invalidate(self, targets: Targets) -> int:
        dropped = sum(self._drop_path(path) for path in targets.paths)
        if targets.patterns:
            for path in list(self._keys_by_path):
                if any(pattern_matches(p, path) for p in targets.patterns):
                    dropped += self._drop_path(path)
        self._bump(targets.paths, everything=bool(targets.patterns))
        return dropped

    def purge_endpoint(self, endpoint_id: str) -> int:
        return self.forget_endpoint(endpoint_id)

    def forget_endpoint(self, endpoint_id: str) -> int:
        """Drop the endpoint's entries here only (never published to other instances)."""
        keys = [
            k for k, vs in self._entries.items() if any(v.endpoint_id == endpoint_id for v in vs)
        ]
        dropped = sum(self._drop(k) for k in keys)
        self._bump((), everything=True)
        return dropped

    def clear(self) -> int:
        dropped = len(self)
        self._entries.clear()
        self._keys_by_path.clear()
        self.size_bytes = 0
        self._bump((), everything=True)
        return dropped

    async def published(self) -> None:
        """Wait until the invalidations made so far reach the other instances' caches;
        nothing to wait for here (see `store/redis_cache.py` for the shared case)."""

    def hold(self, token: str, targets: Targets, until: float) -> None:
        self._holds[token] = (targets, until)

    def release(self, token: str) -> None:
        self._holds.pop(token, None)

    def holding(self, token: str) -> bool:
        return token in self._holds

    def held(self, path: str, now: float) -> bool:
        if not self._holds:
            return False
        expired = [t for t, (_, until) in self._holds.items() if until <= now]
        for token in expired:
            del self._holds[token]
        return any(
            path in targets.paths or any(pattern_matches(p, path) for p in targets.patterns)
            for targets, _ in self._holds.values()
        )

    def storable(self, path: str, since_generation: int, now: float) -> bool:
        if since_generation < self._floor:
            return False
        if self._invalidated.get(path, -1) > since_generation:
            return False
        return not self.held(path, now)


def forget_uncached(cache: MemoryResponseCache, before: Catalog, after: Catalog) -> None:
    """An endpoint whose caching was switched off or changed loses its entries here.

    Each instance does this when it reloads the catalog, so none keeps entries that
    writes stopped invalidating: while no endpoint caches, writes publish nothing
    (`gateway/cache_writes.py`), and an entry kept from before could otherwise be
    served once caching is switched on again."""

    def caching(c: Catalog) -> dict[str, object]:
        return {r.endpoint_id: r.policy.cache if r.policy.managed else None for r in c.routes}

    old = caching(before)
    for endpoint_id, policy in caching(after).items():
        if old.get(endpoint_id) != policy:
            cache.forget_endpoint(endpoint_id)
