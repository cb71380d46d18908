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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            ex = exchange_of(scope)
            label = ex.endpoint_label
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            metrics.REQUESTS.labels(label, method, str(ex.status or 499)).inc()
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - ex.started)
