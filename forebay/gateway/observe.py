"""Count every exchange once it is over: requests by endpoint, method and status."""

from __future__ import annotations

import time
from typing import Any

from forebay.admin import metrics
from forebay.catalog.model import METHODS
from forebay.gateway.exchange import exchange_of


class Observe:
    def __init__(self, app: Any) -> None:
        self.app = app
        # prometheus-client's labels() takes a lock and builds a key per call; the set of
        # label values is small (endpoints x methods x statuses), so keep the children.
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            ex = exchange_of(scope)
            key = (ex.endpoint_label, scope["method"], ex.status or 499)
            counter = self._counters.get(key)
            if counter is None:
                method = key[1] if key[1] in METHODS else "OTHER"
                counter = metrics.REQUESTS.labels(key[0], method, str(key[2]))
                if len(self._counters) < 10_000:
                    self._counters[key] = counter
            counter.inc()
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - ex.started)
