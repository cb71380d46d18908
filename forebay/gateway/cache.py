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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from forebay.admin import metrics
from forebay.catalog.catalog import Route
from forebay.gateway.cache_fill import (
    HIT,
    Fill,
    Flight,
    Mode,
    build_entry,
    judge,
    matches,
    refreshed_headers,
    serve,
)
from forebay.gateway.cache_writes import Invalidation
from forebay.gateway.exchange import Exchange
from forebay.policy import freshness, invalidation
from forebay.policy.cache_keys import normalise_path, primary_key
from forebay.store.cache import CachedResponse, MemoryResponseCache

PASS_SECONDS = 5.0  # how long a key whose answer was not storable skips coalescing
_STRIP_FORWARD = frozenset({b"if-none-match", b"if-modified-since", b"range", b"if-range"})
_COALESCED = b"forebay; hit; detail=coalesced"


def _empty_receive() -> Callable[[], Any]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


async def _discard(message: dict[str, Any]) -> None:
    pass


class Cache(Invalidation):
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

    async def _fetch(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        ex: Exchange,
        route: Route,
        key: str,
        path: str,
        stale: CachedResponse | None,
        stale_usable: bool,
        flight: Flight | None,
        head: bool,
        validators: tuple[bytes | None, bytes | None] | None,
        authorization: bool,
        background: bool = False,
    ) -> None:
        """Forward a GET (a HEAD is fetched as a GET, to be stored) and store what may be."""
        generation = flight.generation if flight is not None else self.store.generation
        forwarded = [(n, v) for n, v in scope["headers"] if n not in _STRIP_FORWARD]
        if stale is not None:
            if stale.etag is not None:
                forwarded.append((b"if-none-match", stale.etag.encode("latin-1")))
            if stale.last_modified is not None:
                forwarded.append((b"if-modified-since", stale.last_modified.encode("latin-1")))
        scope = {**scope, "method": "GET", "headers": forwarded}
        assert route.policy.cache is not None
        c = route.policy.cache
        rules = freshness.CacheRules(
            c.ttl, c.respect_origin, c.stale_while_revalidate, c.stale_if_error
        )
        now = self.clock()

        def let_go() -> None:
            self.passes[key] = now + PASS_SECONDS
            if len(self.passes) > 10_000:
                self.passes.clear()
            if flight is not None:
                flight.done.set()

        fill = Fill(send, rules, authorization, self.max_entry, stale, stale_usable, let_go)
        try:
            await self.app(scope, receive, fill)
        except Exception:
            if stale is None or not stale_usable or fill.mode is Mode.PASS or background:
                raise
            fill.mode = Mode.FAILED
        if fill.mode is Mode.PASS:
            self.bypass.inc()
            ex.cache = ex.cache or "bypass"
        elif not background and fill.mode is Mode.BUFFER:
            self.miss.inc()
            ex.cache = "miss"
        if background or fill.mode is Mode.PASS:
            if background and fill.mode in (Mode.BUFFER, Mode.REVALIDATED):
                self._store_fill(fill, scope, ex, route, key, path, stale, generation)
            return
        if fill.mode is Mode.FAILED and stale is not None:
            self.stale.inc()
            ex.cache = "stale"
            if flight is not None:
                flight.stale = stale
            age = stale.initial_age + self.clock() - stale.stored_at
            failed = fill.status or 502  # no answer at all: as the gateway's 502 would say
            status = b"forebay; fwd=stale; fwd-status=%d; detail=stale-if-error" % failed
            return await serve(send, ex, stale, age, status, head, validators)
        entry, stored = self._store_fill(fill, scope, ex, route, key, path, stale, generation)
        if entry is None:
            return
        if flight is not None:
            flight.entry = entry
            flight.done.set()  # the waiters need not wait for this answer to be sent
        if fill.mode is Mode.REVALIDATED:
            self.revalidated.inc()
            ex.cache = "revalidated"
            cache_status = b"forebay; fwd=stale; fwd-status=304"
        else:
            cache_status = (
                b"forebay; fwd=uri-miss; stored"
                if stored
                else (b"forebay; fwd=uri-miss; detail=write-pending")
            )
        await serve(send, ex, entry, entry.initial_age, cache_status, head, validators)

    def _store_fill(
        self,
        fill: Fill,
        scope: dict[str, Any],
        ex: Exchange,
        route: Route,
        key: str,
        path: str,
        stale: CachedResponse | None,
        generation: int,
    ) -> tuple[CachedResponse | None, bool]:
        now = self.clock()
        if fill.mode is Mode.REVALIDATED and stale is not None:
            status, headers, body = (
                stale.status,
                refreshed_headers(stale.headers, fill.headers),
                stale.body,
            )
            verdict, found = judge(status, headers, fill.rules, fill.authorization)
            if not verdict.store:
                return stale, False
        elif fill.mode is Mode.BUFFER and fill.complete and fill.verdict is not None:
            status, headers, body = fill.status, list(fill.headers), fill.body
            verdict, found = fill.verdict, fill.found
        else:
            return None, False
        entry = build_entry(
            status,
            headers,
            body,
            verdict,
            found,
            scope["headers"],
            ex.consumer,
            route.endpoint_id,
            now,
        )
        stored = self.store.storable(path, generation, now)
        if stored:
            self.store.put(key, entry)
            metrics.CACHE_BYTES.set(self.store.size_bytes)
        return entry, stored

    def _refresh(
        self,
        scope: dict[str, Any],
        ex: Exchange,
        route: Route,
        key: str,
        path: str,
        stale: CachedResponse,
        authorization: bool,
    ) -> None:
        """Fetch `key` again in the background (stale-while-revalidate)."""
        flight = self.flights[key] = Flight(path, self.store.generation)
        own = Exchange(route=route, consumer=ex.consumer)
        scope = {**scope, "forebay": own}

        async def run() -> None:
            try:
                await self._fetch(
                    scope,
                    _empty_receive(),
                    _discard,
                    own,
                    route,
                    key,
                    path,
                    stale,
                    False,
                    flight,
                    False,
                    None,
                    authorization,
                    background=True,
                )
            finally:
                flight.done.set()
                if self.flights.get(key) is flight:
                    del self.flights[key]

        task = asyncio.get_running_loop().create_task(run(), name=f"cache-refresh {key}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)
