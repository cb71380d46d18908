"""The catalog as the data plane sees it: an immutable routing snapshot.

The data plane never reads the store per request. It holds one `Catalog` and swaps in a
new one when the store's version moves, so a toggle made anywhere takes effect on every
process within the polling interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from forebay.catalog.endpoint import Endpoint, EndpointPolicy
from forebay.catalog.matcher import Router

MATCHES_KEPT = 4096
MATCH_PATH_KEPT = 512  # characters: the memory kept is at most about 2 MB


@dataclass(frozen=True, slots=True)
class Route:
    """What a matched request needs to know about its endpoint."""

    endpoint_id: str
    name: str
    method: str
    template: str
    policy: EndpointPolicy

    @property
    def managed(self) -> bool:
        return self.policy.managed


class Catalog:
    def __init__(self, endpoints: Iterable[Endpoint] = (), version: int = 0) -> None:
        self.version = version
        self.routes = [
            Route(e.id, e.name, e.method, e.path, e.policy)
            for e in sorted(endpoints, key=lambda e: (e.path, e.method))
        ]
        self._router: Router[Route] = Router((r.method, r.template, r) for r in self.routes)
        self._by_id = {r.endpoint_id: r for r in self.routes}
        # Whether any endpoint caches: when none does, writes have nothing to invalidate.
        self.caches = any(r.policy.managed and r.policy.cache is not None for r in self.routes)
        self._matched: dict[tuple[str, str], tuple[Route | None, bool]] = {}

    def route(self, endpoint_id: str | None) -> Route | None:
        return self._by_id.get(endpoint_id) if endpoint_id else None

    def match(self, method: str, path: str) -> tuple[Route | None, bool]:
        """The route for a request, and whether the path is routed for any method."""
        # Most traffic repeats a few paths: remember answers, up to a bound (then start
        # over, which costs less per request than keeping a least-recently-used order).
        key = (method, path)
        found = self._matched.get(key)
        if found is None:
            found = self._router.match(method, path)
            if len(path) <= MATCH_PATH_KEPT:  # a client's huge paths are not kept
                if len(self._matched) >= MATCHES_KEPT:
                    self._matched.clear()
                self._matched[key] = found
        return found

    def allowed(self, path: str) -> list[str]:
        return self._router.allowed(path)

    def __len__(self) -> int:
        return len(self.routes)
