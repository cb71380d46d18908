"""The cache's write side: what a successful write, a finished asynchronous delivery or
an operator's purge drops from the cache (the read side is `gateway/cache.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forebay.admin import metrics
from forebay.catalog.catalog import Route
from forebay.dispatch.model import AcceptedRequest
from forebay.gateway.cache_fill import Flight
from forebay.gateway.exchange import Exchange
from forebay.policy import invalidation
from forebay.store.cache import MemoryResponseCache


class Invalidation:
    app: Any
    store: MemoryResponseCache
    flights: dict[str, Flight]
    hold_seconds: float
    clock: Callable[[], float]
    catalog: Any

    # -- writes --------------------------------------------------------------------------

    def _nothing_cached(self) -> bool:
        """No endpoint caches and nothing is stored: a write has no entry to drop, and no
        read in flight could store one. (With Redis, invalidations and holds are
        published to every instance; with nothing to invalidate, nothing is published.)"""
        return self.catalog is not None and not self.catalog.current.caches and not self.store

    async def _write(self, scope: dict[str, Any], receive: Any, send: Any, ex: Exchange) -> None:
        if self._nothing_cached():
            await self.app(scope, receive, send)
            return

        async def observe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self._written(scope, ex, message)
                # Shared invalidations reach the other instances before the client hears
                # that its write is done.
                await self.store.published()
            await send(message)

        await self.app(scope, receive, observe)

    def _written(self, scope: dict[str, Any], ex: Exchange, message: dict[str, Any]) -> None:
        status = message["status"]
        if not 200 <= status < 300:
            return
        location = content_location = None
        if ex.async_id is None:  # an accept's Location is its own status URL
            for name, value in message["headers"]:
                if name == b"location":
                    location = value.decode("latin-1")
                elif name == b"content-location":
                    content_location = value.decode("latin-1")
        route = ex.route
        raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        targets = invalidation.targets(
            scope["method"],
            raw,
            route.template if route else None,
            route.policy.invalidates if route else (),
            location,
            content_location,
        )
        self.invalidate(targets)
        if ex.async_id is not None and status == 202:
            self.store.hold(ex.async_id, targets, self.clock() + self.hold_seconds)

    def delivered(self, r: AcceptedRequest, route: Route | None) -> None:
        """An asynchronous write is done: invalidate again, and stop holding its paths."""
        if self._nothing_cached() and not self.store.holding(r.id):
            return
        location = content_location = None
        if r.response is not None:
            for name, value in r.response.headers:
                if name.lower() == "location":
                    location = value
                elif name.lower() == "content-location":
                    content_location = value
        targets = invalidation.targets(
            r.method,
            r.target.split("?", 1)[0],
            route.template if route else None,
            route.policy.invalidates if route else (),
            location,
            content_location,
        )
        self.invalidate(targets)
        self.store.release(r.id)

    def invalidate(self, targets: invalidation.Targets) -> int:
        """Drop the entries, and detach fetches in progress for those paths, so that a
        request arriving from now on does not wait for an answer older than the write."""
        dropped = self.store.invalidate(targets)
        for key, flight in list(self.flights.items()):
            if flight.path in targets.paths or any(
                invalidation.pattern_matches(p, flight.path) for p in targets.patterns
            ):
                del self.flights[key]
        metrics.CACHE_BYTES.set(self.store.size_bytes)
        return dropped

    def purge_endpoint(self, endpoint_id: str) -> int:
        dropped = self.store.purge_endpoint(endpoint_id)
        self.flights.clear()
        metrics.CACHE_BYTES.set(self.store.size_bytes)
        return dropped

    def clear(self) -> int:
        dropped = self.store.clear()
        self.flights.clear()
        metrics.CACHE_BYTES.set(self.store.size_bytes)
        return dropped
