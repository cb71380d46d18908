"""Error capture: the last few failed exchanges of each endpoint, with a redacted sample,
kept in the store for the admin API and the dashboard.

Captured: every answer with status 500 or more, whether the origin sent it or the
gateway made it (origin unreachable or timed out, an internal error, the store
failing). Client errors (4xx) are not samples of a failure; they are in the access log
and the metrics.

Recording costs the data plane a dictionary append: samples wait in memory, the newest
`keep` per endpoint, and a background task writes them to the store once a second. An
origin that fails thousands of times a second therefore costs the store one small
write a second, not thousands.

Redacted: the values of Authorization, Proxy-Authorization, Cookie, Set-Cookie,
X-API-Key and the operator's key header, and the key's query parameter. Request bodies
are never kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import structlog

from forebay.admin import metrics
from forebay.gateway.exchange import Exchange
from forebay.settings import Settings
from forebay.store.errors_log import CapturedError, ErrorLog
from forebay.tasks import cancel_and_wait

log = structlog.get_logger("forebay.gateway")

REDACTED = "[redacted]"
FLUSH_SECONDS = 1.0
_SECRET_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"cookie", b"set-cookie", b"x-api-key"}
)


class ErrorCapture:
    def __init__(self, errors: ErrorLog, settings: Settings) -> None:
        self.errors = errors
        self.keep = settings.errors.keep
        self.body_bytes = settings.errors.body_bytes
        auth = settings.auth
        self.secret_headers = _SECRET_HEADERS | (
            {auth.header.encode()} if auth.header else frozenset()
        )
        self.secret_query = auth.query
        self.pending: dict[str, deque[CapturedError]] = {}
        self._task: asyncio.Task[None] | None = None

    def _headers(self, headers: Any) -> list[tuple[str, str]]:
        return [
            (
                n.decode("latin-1"),
                REDACTED if n.lower() in self.secret_headers else v.decode("latin-1"),
            )
            for n, v in headers or ()
        ]

    def _query(self, query: bytes) -> str:
        text = query.decode("latin-1")
        name = self.secret_query
        if not name or not text:
            return text
        return "&".join(
            f"{name}={REDACTED}" if part.partition("=")[0] == name else part
            for part in text.split("&")
        )

    def record(self, scope: dict[str, Any], ex: Exchange) -> None:
        route = ex.route
        endpoint_id = route.endpoint_id if route else "unmatched"
        kind = ex.error or ("origin-error" if ex.origin_seconds is not None else "gateway-error")
        body = (ex.sample_body or b"")[: self.body_bytes]
        entry = CapturedError(
            at=time.time(),
            endpoint_id=endpoint_id,
            endpoint=ex.endpoint_label,
            kind=kind,
            status=ex.status,
            request_id=ex.request_id,
            consumer=ex.consumer,
            method=scope["method"],
            path=scope["path"],
            query=self._query(scope["query_string"]),
            request_headers=self._headers(scope["headers"]),
            response_headers=self._headers(ex.sample_headers),
            response_body=body.decode("utf-8", "replace"),
            latency_ms=round((time.perf_counter() - ex.started) * 1000, 3),
            origin_ms=None if ex.origin_seconds is None else round(ex.origin_seconds * 1000, 3),
        )
        q = self.pending.get(endpoint_id)
        if q is None:
            q = self.pending[endpoint_id] = deque(maxlen=self.keep)
        q.append(entry)
        metrics.ERRORS_CAPTURED.labels(kind).inc()

    async def flush(self) -> None:
        if not self.pending:
            return
        batch = [e for q in self.pending.values() for e in q]
        self.pending = {}
        try:
            await self.errors.add(batch, self.keep)
        except Exception:
            log.exception("could not store captured errors; dropped", count=len(batch))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="error-capture")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
        await self.flush()
