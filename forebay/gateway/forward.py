"""The innermost stage: pass the request to the origin and its answer back.

Small bodies are read whole and sent in one write, which is what most API traffic is;
larger ones stream both ways in chunks, so a body of any size costs bounded memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import structlog
from yarl import URL

from forebay.admin import metrics
from forebay.dispatch.limits import ConcurrencyLimit
from forebay.gateway.exchange import Exchange, exchange_of, random_bytes
from forebay.gateway.limits import BodyTooLarge, ClientGone, RequestLimits
from forebay.gateway.problem import send_problem
from forebay.policy.backoff import parse_retry_after
from forebay.policy.forwarding import FORWARDING_NAMES, end_to_end, forwarding_headers
from forebay.policy.tracing import new_traceparent, valid_traceparent

log = structlog.get_logger("forebay.gateway")


# Up to this size a body is buffered and sent with one write.
WHOLE_BODY = 256 * 1024

_DROP = FORWARDING_NAMES | {b"content-length", b"traceparent", b"expect"}


def _quote_raw(raw: bytes) -> str:
    # Clients sometimes send raw UTF-8 in the request target; the origin gets it encoded.
    if raw.isascii():
        return raw.decode("ascii")
    return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)


class Forward:
    def __init__(
        self,
        origin: str,
        session: aiohttp.ClientSession,
        limits: RequestLimits,
        read_timeout: float,
        governor: ConcurrencyLimit | None = None,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.session = session
        self.limits = limits
        self.max_body = limits.max_body
        self.read_timeout = read_timeout
        self.governor = governor

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = exchange_of(scope)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = _quote_raw(raw_path)
        if scope["query_string"]:
            target += "?" + _quote_raw(scope["query_string"])
        url = URL(self.origin + target, encoded=True)

        req_headers = scope["headers"]
        declared: int | None = None
        chunked = False
        trace: bytes | None = None
        host: bytes | None = None
        for name, value in req_headers:
            if name == b"content-length":
                declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"traceparent" and valid_traceparent(value):
                trace = value
            elif name == b"host":
                host = value
        client = scope.get("client")
        headers = end_to_end(req_headers, _DROP)
        headers += forwarding_headers(
            req_headers, client[0] if client else None, scope.get("scheme", "http"), host
        )
        headers.append((b"traceparent", trace or new_traceparent(random_bytes)))

        data: bytes | AsyncIterator[bytes] | None = None
        if declared is not None and declared <= WHOLE_BODY:
            data = await self._read_whole(receive, declared)
        elif declared is not None or chunked:
            data = self._stream(receive, ex)
            if declared is not None:
                headers.append((b"content-length", str(declared).encode()))
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]

        governor = self.governor
        if governor is not None:
            governor.started()
        sent_at = time.perf_counter()
        try:
            resp = await self.session.request(
                scope["method"], url, headers=str_headers, data=data, allow_redirects=False
            )
        except Exception as e:  # every failure before an answer becomes a problem body
            too_large = isinstance(e, BodyTooLarge) or ex.error == "body-too-large"
            gone = isinstance(e, ClientGone) or ex.error == "client-gone"
            if governor is not None:
                # The client's oversized or cut-off body says nothing about the origin.
                if too_large or gone:
                    governor.released()
                else:
                    governor.finished(None, None)
            if gone:
                raise ClientGone() from e
            if too_large:
                return await self.limits.too_large(scope, send)
            return await self._origin_failed(send, ex, e)
        ex.origin_seconds = time.perf_counter() - sent_at
        metrics.ORIGIN_SECONDS.observe(ex.origin_seconds)
        if governor is not None:
            retry_after = None
            if resp.status in (429, 503):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
            governor.finished(ex.origin_seconds, resp.status, retry_after, ex.endpoint_label)
        try:
            await self._relay(resp, ex, send, scope["method"] == "HEAD")
        finally:
            resp.release()

    async def _read_whole(self, receive: Any, declared: int) -> bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            parts = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        if len(body) != declared:  # a body cut short is not the request the client meant
            raise ClientGone()
        return body

    async def _stream(self, receive: Any, ex: Exchange) -> AsyncIterator[bytes]:
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                ex.error = "client-gone"  # aiohttp may wrap the exception on its way out
                raise ClientGone()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            seen += len(chunk)
            if seen > self.max_body:
                ex.error = "body-too-large"
                raise BodyTooLarge()
            if chunk:
                yield chunk

    async def _relay(
        self, resp: aiohttp.ClientResponse, ex: Exchange, send: Any, head: bool
    ) -> None:
        headers = [(n.lower(), v) for n, v in resp.raw_headers]
        headers = end_to_end(headers)
        headers.append((b"x-request-id", ex.request_id.encode()))
        length = resp.content_length
        ex.status = resp.status
        ex.response_started = True
        if resp.status >= 500:
            ex.sample_headers = headers
        if head or (length is not None and length <= WHOLE_BODY):
            body = b"" if head else await self._read_body(resp)
            if resp.status >= 500:
                ex.sample_body = body
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        try:
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (TimeoutError, aiohttp.ClientError) as e:
            # Headers are out: the only honest signal left is to cut the connection.
            log.warning("origin failed mid-response", request_id=ex.request_id, error=repr(e))
            raise
        await send({"type": "http.response.body", "body": b""})

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        return await resp.read()

    async def _origin_failed(self, send: Any, ex: Exchange, e: BaseException) -> None:
        target = self.origin
        if isinstance(e, aiohttp.ConnectionTimeoutError):
            kind, status, title = "connect-timeout", 504, "Origin timed out"
            detail = f"Could not connect to the origin {target} within the connect timeout."
        elif isinstance(e, asyncio.TimeoutError):  # includes aiohttp.SocketTimeoutError
            kind, status, title = "origin-timeout", 504, "Origin timed out"
            detail = (
                f"The origin {target} did not answer within the timeout "
                f"(read {self.read_timeout:g} s). It may be overloaded; try again later."
            )
        elif isinstance(e, aiohttp.ClientConnectorError):
            kind, status, title = "origin-unreachable", 502, "Origin unreachable"
            reason = e.os_error.strerror or str(e.os_error)
            detail = f"Could not connect to the origin {target}: {reason}."
        elif isinstance(e, aiohttp.ClientError | OSError):
            kind, status, title = "origin-bad-response", 502, "Origin connection failed"
            detail = f"The connection to the origin {target} failed before an answer: {e!r}."
        else:
            raise e
        metrics.ORIGIN_ERRORS.labels(kind).inc()
        log.warning("origin exchange failed", request_id=ex.request_id, kind=kind, error=repr(e))
        await send_problem(send, ex, status, kind, title, detail)
