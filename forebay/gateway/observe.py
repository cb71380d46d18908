"""The outermost stage: it creates the per-request `Exchange`, and once the exchange is
over records what it leaves behind: the request metrics, one access-log line and, for
failures (status 500 or more), a captured sample, and the consumer's usage counts."""

from __future__ import annotations

import time
from typing import Any

import structlog

from forebay.admin import metrics
from forebay.admin.usage import USAGE
from forebay.catalog.model import METHODS
from forebay.gateway.capture import ErrorCapture
from forebay.gateway.exchange import Exchange

access_log = structlog.get_logger("forebay.access")


class Observe:
    def __init__(self, app: Any, capture: ErrorCapture | None = None, access: bool = True) -> None:
        self.app = app
        self.capture = capture
        self.access = access
        # prometheus-client's labels() takes a lock and builds a key per call; the set of
        # label values is small (endpoints x methods x statuses), so keep the children.
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = scope["forebay"] = Exchange()
        try:
            if self.access:  # the byte count is for the access line only
                await self.app(scope, receive, _counting(send, ex))
            else:
                await self.app(scope, receive, send)
        finally:
            status = ex.status or 499
            key = (ex.endpoint_label, scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:
                method = key[1] if key[1] in METHODS else "OTHER"
                counter = metrics.REQUESTS.labels(key[0], method, str(key[2]))
                if len(self._counters) < 10_000:
                    self._counters[key] = counter
            counter.inc()
            now = time.perf_counter()
            elapsed = now - ex.started
            if ex.consumer:  # anonymous traffic, the common case without consumers, skips it
                USAGE.record(ex.consumer, status, now)
            metrics.REQUEST_SECONDS.observe(elapsed)
            if status >= 500 and self.capture is not None:
                self.capture.record(scope, ex)
            if self.access:
                origin = ex.origin_seconds
                access_log.info(
                    "request",
                    request_id=ex.request_id,
                    consumer=ex.consumer or None,
                    endpoint=ex.endpoint_label,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    bytes=ex.bytes_sent,
                    latency_ms=round(elapsed * 1000, 3),
                    origin_ms=None if origin is None else round(origin * 1000, 3),
                    cache=ex.cache,
                    async_id=ex.async_id,
                    error=ex.error,
                )


def _counting(send: Any, ex: Exchange) -> Any:
    async def counting_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            ex.bytes_sent += len(message.get("body", b""))
        await send(message)

    return counting_send
