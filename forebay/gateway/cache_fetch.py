"""The cache's misses: forward a GET to the origin (with the stale entry's validators,
when there is one), store what may be stored and answer from it, or stand a stale entry
in when the origin fails; and refresh in the background (stale-while-revalidate).

The lookups, hits and coalescing that decide a fetch is needed are `gateway/cache.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from forebay.admin import metrics
from forebay.catalog.catalog import Route
from forebay.gateway.cache_fill import (
    Fill,
    Flight,
    Mode,
    build_entry,
    judge,
    refreshed_headers,
    serve,
)
from forebay.gateway.exchange import Exchange
from forebay.policy import freshness
from forebay.store.cache import CachedResponse, MemoryResponseCache

PASS_SECONDS = 5.0  # how long a key whose answer was not storable skips coalescing
_STRIP_FORWARD = frozenset({b"if-none-match", b"if-modified-since", b"range", b"if-range"})


def _empty_receive() -> Callable[[], Any]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


async def _discard(message: dict[str, Any]) -> None:
    pass


class Fetching:
    app: Any
    store: MemoryResponseCache
    max_entry: int
    clock: Callable[[], float]
    flights: dict[str, Flight]
    passes: dict[str, float]
    background: set[asyncio.Task[None]]
    miss: Counter
    stale: Counter
    revalidated: Counter
    bypass: Counter

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
        elif stored:
            cache_status = b"forebay; fwd=uri-miss; stored"
        elif self.store.held(path, self.clock()):  # an accepted write holds the path
            cache_status = b"forebay; fwd=uri-miss; detail=write-pending"
        else:  # a write invalidated it while this answer, maybe older, was on its way
            cache_status = b"forebay; fwd=uri-miss; detail=invalidated"
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
