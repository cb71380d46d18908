"""The response cache stage: answers GETs of cached endpoints from memory, and
invalidates what a successful write makes wrong.

Placed after Routing (it needs the endpoint's policy) and before AsyncAccept (it sees
an accepted asynchronous write's 202 on the way back). A hit costs a key, a dictionary
lookup and two sends; everything else is off that path.

- Misses for one key are coalesced: one request (the leader) fetches, the others wait
  for it. An answer that turns out not storable lets them go at its headers, and the key
  is then passed straight through for a while, so nobody queues behind a fetch that
  cannot help (the "hit-for-pass" of Varnish).
- Expired entries with validators are revalidated (If-None-Match / If-Modified-Since);
  inside `stale_while_revalidate` they are served while a background fetch refreshes
  them; inside `stale_if_error` they stand in when the origin fails, times out or its
  breaker is open.
- A 2xx to POST, PUT, PATCH or DELETE invalidates before the client sees it; a 202 from
  AsyncAccept invalidates too and holds the paths (nothing is stored for them) until the
  delivery completes, when `delivered` invalidates again and lets go.

This module is the read side up to the decision to fetch; the fetch and what it stores
are `gateway/cache_fetch.py`, the invalidations `gateway/cache_writes.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from forebay.admin import metrics
from forebay.catalog.catalog import Route
from forebay.gateway.cache_fetch import Fetching
from forebay.gateway.cache_fill import HIT, Flight, matches, serve
from forebay.gateway.cache_writes import Invalidation
from forebay.gateway.exchange import Exchange
from forebay.policy import freshness, invalidation
from forebay.policy.cache_keys import normalise_path, primary_key
from forebay.store.cache import MemoryResponseCache

_COALESCED = b"forebay; hit; detail=coalesced"


class Cache(Fetching, Invalidation):
    def __init__(
        self,
        app: Any,
        store: MemoryResponseCache,
        max_entry: int,
        hold_seconds: float,
        breaker_open: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
        catalog: Any = None,
    ) -> None:
        self.app = app
        self.catalog = catalog  # what `.current` is the routing snapshot; None: always cache
        self.store = store
        self.max_entry = max_entry
        self.hold_seconds = hold_seconds
        self.breaker_open = breaker_open
        self.clock = clock
        self.flights: dict[str, Flight] = {}
        self.passes: dict[str, float] = {}
        self.background: set[asyncio.Task[None]] = set()
        # Bound counters: labels() per request would cost a lock and a tuple.
        count = metrics.CACHE_REQUESTS.labels
        self.hit, self.miss, self.stale = count("hit"), count("miss"), count("stale")
        self.revalidated, self.coalesced = count("revalidated"), count("coalesced")
        self.bypass = count("bypass")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        ex: Exchange = scope["forebay"]
        if method == "GET" or method == "HEAD":
            route = ex.route
            if route is None or route.policy.cache is None or not route.policy.managed:
                await self.app(scope, receive, send)
                return
            return await self._read(scope, receive, send, ex, route, method == "HEAD")
        if method in invalidation.MUTATIONS:
            return await self._write(scope, receive, send, ex)
        await self.app(scope, receive, send)

    # -- reads ---------------------------------------------------------------------------

    async def _read(
        self, scope: dict[str, Any], receive: Any, send: Any, ex: Exchange, route: Route, head: bool
    ) -> None:
        path = normalise_path((scope.get("raw_path") or scope["path"].encode()).decode("latin-1"))
        query = scope["query_string"]
        key = primary_key(path, query.decode("latin-1")) if query else path
        headers = scope["headers"]
        authorization = False
        inm = ims = None
        for name, value in headers:
            if name == b"authorization":
                authorization = True
            elif name == b"if-none-match":
                inm = value
            elif name == b"if-modified-since":
                ims = value
        validators = (inm, ims) if inm is not None or ims is not None else None
        now = self.clock()
        entry = None
        variants = self.store.lookup(key)
        if variants is not None:
            for candidate in variants:
                if matches(candidate, headers, ex.consumer, authorization):
                    entry = candidate
                    break
        stale_usable = False
        if entry is not None:
            age = entry.initial_age + now - entry.stored_at
            if age < entry.ttl:
                self.hit.inc()
                ex.cache = "hit"
                return await serve(send, ex, entry, age, HIT, head, validators)
            if freshness.within(entry.ttl, entry.stale_while_revalidate, age):
                if key not in self.flights:
                    self._refresh(scope, ex, route, key, path, entry, authorization)
                self.stale.inc()
                ex.cache = "stale"
                status = b"forebay; hit; ttl=%d; detail=stale-while-revalidate" % (entry.ttl - age)
                return await serve(send, ex, entry, age, status, head, validators)
            stale_usable = freshness.within(entry.ttl, entry.stale_if_error, age)
            if stale_usable and self.breaker_open():
                self.stale.inc()
                ex.cache = "stale"
                status = b"forebay; hit; ttl=%d; detail=stale-if-error" % (entry.ttl - age)
                return await serve(send, ex, entry, age, status, head, validators)
        flight = None
        if self.passes.get(key, 0.0) <= now:
            flight = self.flights.get(key)
            if flight is None:
                flight = self.flights[key] = Flight(path, self.store.generation)
            else:
                await flight.done.wait()
                got = flight.entry or flight.stale
                if got is not None and matches(got, headers, ex.consumer, authorization):
                    coalesced = got is flight.entry
                    (self.coalesced if coalesced else self.stale).inc()
                    ex.cache = "coalesced" if coalesced else "stale"
                    age = got.initial_age + self.clock() - got.stored_at
                    status = _COALESCED if coalesced else b"forebay; hit; detail=stale-if-error"
                    return await serve(send, ex, got, age, status, head, validators)
                flight = None  # not storable, or not for us: fetch on our own, in parallel
        try:
            await self._fetch(
                scope,
                receive,
                send,
                ex,
                route,
                key,
                path,
                entry,
                stale_usable,
                flight,
                head,
                validators,
                authorization,
            )
        finally:
            if flight is not None:
                flight.done.set()
                if self.flights.get(key) is flight:
                    del self.flights[key]
