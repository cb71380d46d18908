"""The data plane's HTTP/1.1 connection, run by uvicorn's server in place of its own.

uvicorn keeps what it is good at (sockets, worker processes, signals, graceful shutdown);
this protocol replaces only its per-request path, which on a small write cost more CPU
than everything Forebay does with the request. Measured on one core against the same
ASGI app: about twice the requests per second of uvicorn's httptools protocol
(`docs/architecture.md`). What it keeps from it: httptools (llhttp) parses, so
ambiguous or malformed requests are refused with 400 before any stage sees them;
pipelined requests are answered in order; reading pauses while a request body is not
consumed and writing waits while the client does not read.

What is different: the keep-alive, header and body timeouts are one timer per
connection that re-arms itself (`deadlines.py`), instead of a timer made and cancelled
per request; slow clients get 408 and open connections are capped (503 past the cap);
protocol upgrades (WebSocket, h2c) are ignored as RFC 9110 allows: the request is
served as HTTP/1.1 and the connection closed after it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast
from urllib.parse import unquote

import httptools
import structlog

from forebay.gateway.exchange import new_request_id
from forebay.http.answers import BAD_REQUEST, TIMEOUT, UNAVAILABLE, Problem, send_internal_error
from forebay.http.cycle import HIGH_WATER, RequestCycle
from forebay.http.deadlines import ConnectionDeadline, ConnectionLimits, Phase

log = structlog.get_logger("forebay.http")

_ASGI = {"version": "3.0", "spec_version": "2.3"}


def _address(transport: asyncio.BaseTransport, name: str) -> tuple[str, int] | None:
    info = transport.get_extra_info(name)
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


class HttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.app_state = app_state
        self.limits = limits = limits or ConnectionLimits()
        self.deadline = ConnectionDeadline(
            self.loop, limits, config.timeout_keep_alive, self._expired
        )
        self.parser = httptools.HttpRequestParser(self)
        # Answer the request before a `Connection: close` even if the client sent more.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.scheme = "http"
        self.reading: RequestCycle | None = None  # the request the parser is reading
        self.writing: RequestCycle | None = None  # the request whose answer is being sent
        self.waiting: deque[RequestCycle] = deque()  # pipelined requests, in order
        self.read_paused = False
        self.refused = False  # a last answer was sent; what still arrives is dropped
        self.write_paused: asyncio.Future[None] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_continue = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.client = _address(transport, "peername")
        self.server = _address(transport, "sockname")
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        limit = self.limits.max_connections
        if limit is not None and len(self.connections) > limit:
            self._refuse(UNAVAILABLE, "connection cap reached")
            return
        self.deadline.enter(Phase.IDLE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        for cycle in (self.reading, self.writing, *self.waiting):
            if cycle is not None:
                cycle.lost()
        self.waiting.clear()
        self._resume_writing()
        self.deadline.cancel()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # served as plain HTTP/1.1, then closed (see on_headers_complete)
        except httptools.HttpParserError as e:
            self._refuse(BAD_REQUEST, str(e))

    def pause_writing(self) -> None:
        if self.write_paused is None:
            self.write_paused = self.loop.create_future()

    def resume_writing(self) -> None:
        self._resume_writing()

    def _resume_writing(self) -> None:
        paused, self.write_paused = self.write_paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.expect_continue = False
        self.deadline.enter(Phase.HEADERS)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")  # a raw non-ASCII target fails here: 400
        if "%" in path:
            path = unquote(path)
        version = parser.get_http_version()
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self.headers,
        }
        if self.app_state:
            scope["state"] = self.app_state.copy()
        keep_alive = version != "1.0" and parser.should_keep_alive() and not parser.should_upgrade()
        cycle = self.reading = RequestCycle(self, scope, keep_alive, self.expect_continue)
        self.deadline.enter(Phase.BODY)
        if self.writing is None:
            self._start(cycle)
        else:
            self.waiting.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.reading
        if cycle is None or cycle.complete:
            return
        cycle.feed(body)
        self.deadline.touch()
        if len(cycle.body) > 1 and cycle.buffered() > HIGH_WATER:
            self.pause_reading()

    def on_message_complete(self) -> None:
        self.deadline.enter(Phase.BUSY)
        cycle = self.reading
        if cycle is not None and not cycle.complete:
            cycle.end()

    # Flow

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = self.deadline.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.waiting:
            self.read_paused = self.deadline.paused = False
            self.deadline.touch()
            self.transport.resume_reading()

    def _start(self, cycle: RequestCycle) -> None:
        self.writing = cycle
        task = self.loop.create_task(self._run(cycle))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, cycle: RequestCycle) -> None:
        try:
            await self.app(cycle.scope, cycle.receive, cycle.send)
        except Exception:
            # The pipeline answers its own errors; this is the last line of defence.
            request_id = new_request_id()
            log.exception("unhandled error in the data plane", request_id=request_id)
            if cycle.started or cycle.disconnected:
                self.transport.close()
                return
            await send_internal_error(cycle, request_id)
            return
        if not cycle.complete and not cycle.disconnected:
            log.error("the data plane returned without completing a response")
            self.transport.close()

    def response_complete(self, cycle: RequestCycle) -> None:
        """The last byte of `cycle`'s answer is written: start the next one, or wait."""
        self.server_state.total_requests += 1
        if self.writing is cycle:
            self.writing = None
        if not cycle.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        if self.waiting:
            self._start(self.waiting.popleft())
        else:
            self.resume_reading()
            if self.reading is cycle:
                self.deadline.enter(Phase.IDLE)

    def _expired(self, phase: Phase) -> None:
        """The client kept the gateway waiting past `phase`'s limit."""
        if phase is Phase.IDLE:
            self.transport.close()
        elif self.writing is None or not self.writing.started:
            self._refuse(TIMEOUT, f"client too slow ({phase.value})")
        else:
            self.transport.close()

    def _refuse(self, problem: Problem, reason: str) -> None:
        """A last answer, then a lingering close: stop writing and read (and drop) what the
        client still sends for a moment, so that its unread bytes do not make the kernel
        reset the connection and destroy the answer before the client reads it."""
        transport = self.transport
        if transport.is_closing() or self.refused:
            return
        self.refused = True
        request_id, answer = problem.answer()
        log.info(
            "connection answered",
            request_id=request_id,
            status=problem.status,
            problem=problem.slug,
            reason=reason,
            client=f"{self.client[0]}:{self.client[1]}" if self.client else None,
        )
        transport.write(answer)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.resume_reading()
        self.deadline.enter(Phase.IDLE)  # closed by the keep-alive timeout at the latest

    # uvicorn's server

    def shutdown(self) -> None:
        """Stop after the answer in progress, if any (graceful shutdown)."""
        if self.writing is None and not self.waiting:
            self.transport.close()
        else:
            for cycle in (self.writing, *self.waiting):
                if cycle is not None:
                    cycle.keep_alive = False
