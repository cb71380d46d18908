"""One request and its response on an HTTP/1.1 connection: the ASGI `receive` and `send`.

Written for the data plane's hot path: the request body is handed over without waiting
when it has already arrived (the usual case for small writes), the response head is built
in one join, and nothing is allocated per request that the request does not need.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forebay.http.protocol import HttpProtocol

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, _REASONS.get(code, b"")) for code in range(100, 600)
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})
_LAST_CHUNK = b"0\r\n\r\n"
HIGH_WATER = 65536  # request body bytes buffered before reading from the client pauses


class ResponseError(RuntimeError):
    """The application broke the ASGI or HTTP rules for a response."""


class RequestCycle:
    __slots__ = (
        "_expected",
        "_head",
        "_waiter",
        "body",
        "chunked",
        "complete",
        "conn",
        "continue_pending",
        "disconnected",
        "drained",
        "keep_alive",
        "more_body",
        "scope",
        "started",
    )

    def __init__(
        self, conn: HttpProtocol, scope: dict[str, Any], keep_alive: bool, expect_continue: bool
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.continue_pending = expect_continue
        self.body: list[bytes] = []
        self.more_body = True
        self.disconnected = False
        self.drained = False  # the whole body has been handed to the app
        self.started = False
        self.complete = False
        self.chunked = False
        self._expected = 0
        self._head = b""  # the response head, until the first part of the body goes with it
        self._waiter: asyncio.Future[None] | None = None

    # Called by the protocol as the request arrives.

    def feed(self, chunk: bytes) -> None:
        self.body.append(chunk)
        self._wake()

    def end(self) -> None:
        self.more_body = False
        self._wake()

    def lost(self) -> None:
        if not self.complete:
            self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def buffered(self) -> int:
        return sum(map(len, self.body))

    # ASGI

    async def receive(self) -> dict[str, Any]:
        conn = self.conn
        if self.continue_pending:
            self.continue_pending = False
            if not conn.transport.is_closing():
                conn.transport.write(_CONTINUE)
        # After the last part of the body, receive() waits for the client to go away, as
        # ASGI servers do: an app may listen for a disconnect while it answers.
        while (
            not self.body
            and (self.more_body or self.drained)
            and not (self.disconnected or self.complete)
        ):
            conn.resume_reading()
            self._waiter = conn.loop.create_future()
            await self._waiter
            self._waiter = None
        if self.disconnected or self.complete:
            return {"type": "http.disconnect"}
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        self.body = []
        if self.more_body:
            conn.resume_reading()
        else:
            self.drained = True
        return {"type": "http.request", "body": data, "more_body": self.more_body}

    async def send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        if conn.write_paused is not None and not self.disconnected:
            await conn.write_paused
        if self.disconnected:
            return
        if not self.started:
            if message["type"] != "http.response.start":
                raise ResponseError(f"expected http.response.start, got {message['type']}")
            self._start(message)
            return
        if self.complete:
            raise ResponseError(f"{message['type']} sent after the response was complete")
        if message["type"] != "http.response.body":
            raise ResponseError(f"expected http.response.body, got {message['type']}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        # The head waits for the first part of the body so that both leave in one write:
        # one send() per small answer instead of two.
        out, self._head = self._head, b""
        if self.scope["method"] == "HEAD":
            self._expected = 0
        elif self.chunked:
            if body:
                out += b"%x\r\n%s\r\n" % (len(body), body)
            if not more:
                out += _LAST_CHUNK
        elif body:
            self._expected -= len(body)
            if self._expected < 0:
                raise ResponseError("response body longer than its Content-Length")
            out = out + body if out else body
        if out:
            conn.transport.write(out)
        if not more:
            if self._expected != 0:
                raise ResponseError("response body shorter than its Content-Length")
            self.complete = True
            self._wake()
            conn.response_complete(self)

    def _start(self, message: dict[str, Any]) -> None:
        status = message["status"]
        parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
        length: int | None = None
        chunked = False
        close = False
        for name, value in message.get("headers", ()):
            if name == b"content-length" and length is None:
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.lower() == b"chunked"
            elif name == b"connection" and b"close" in value.lower():
                close = True
            parts.append(b"%s: %s\r\n" % (name, value))
        if not close and not self.keep_alive:
            parts.append(b"connection: close\r\n")
        expected, framed = 0, False
        if length is not None and not chunked:
            expected = length
        elif self.scope["method"] != "HEAD" and status not in _NO_BODY_STATUSES:
            if not chunked:
                parts.append(b"transfer-encoding: chunked\r\n")
            framed = True
        parts.append(b"\r\n")
        head = b"".join(parts)
        # One CR and one LF per line, or a header carried a line break: refuse to split the
        # response rather than send what a client could read as two. Nothing of this head
        # is kept, so the app may still answer with another.
        lines = len(parts)
        if head.count(b"\n") != lines or head.count(b"\r") != lines:
            raise ResponseError("a response header name or value holds a line break")
        if close:
            self.keep_alive = False
        self._expected, self.chunked = expected, framed
        self.started = True
        self.continue_pending = False
        self._head = head
