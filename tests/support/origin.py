"""A real HTTP origin on loopback, run on its own thread so any test can use it.

Routes:
  ANY  /echo/...           the request as JSON (method, path, raw path, query, headers,
                           body length and sha256)
  GET  /bytes/{n}          n bytes, with Content-Length; ?chunked=1 streams without it
  GET  /status/{code}      that status, with a small body
  GET  /slow/{seconds}     answers after a delay
  GET  /drop               closes the connection without an answer
  ANY  /rec/...            a recording route for asynchronous delivery: every request is
                           kept in full in `deliveries` (see `Delivery`), and answered
                           from a per-path script of replies (`script`), a standing reply
                           (`set_reply`), or 200 with a small JSON body; `set_latency`
                           delays the answers
  POST /hooks/...          a callback receiver: bodies and headers kept in `hooks`
Every request is recorded in `requests`. `down()` closes the listener and every open
connection (clients then get "connection refused"); `up()` listens on the same port
again.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from support.loopback import LoopbackServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body_len: int


@dataclass
class Reply:
    """What the recording route answers: a status, headers and a body."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float | None = None  # seconds before answering; None: the path's latency


@dataclass
class Delivery:
    """One request that reached a recording route, as the origin saw it.

    `at` and `done_at` are `time.monotonic()` in the test process: when the request (with
    its body) had arrived, and when the answer was about to be sent (None if it never was,
    for example because the client gave up or the origin went down meanwhile)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float
    done_at: float | None = None
    status: int | None = None

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Hook:
    """A callback the gateway POSTed to `/hooks/...`."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float


@dataclass
class LoopbackOrigin(LoopbackServer):
    thread_name = "test-origin"
    what = "test origin"
    handler_cancellation = True

    requests: list[Recorded] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _standing: dict[str, Reply] = field(default_factory=dict)
    _latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    async def _echo(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), size))
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": request.query_string,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_len": size,
                "body_sha256": digest.hexdigest(),
            },
            headers={"X-Origin": "test", "Connection": "keep-alive, X-Hop", "X-Hop": "secret"},
        )

    async def _bytes(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        block = bytes(range(256)) * 256  # 64 KiB of a known pattern
        if request.query.get("chunked"):
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            sent = 0
            while sent < n:
                piece = block[: min(len(block), n - sent)]
                await resp.write(piece)
                sent += len(piece)
            await resp.write_eof()
            return resp
        body = (block * (n // len(block) + 1))[:n]
        return web.Response(body=body, content_type="application/octet-stream")

    async def _status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        body = None if code in (204, 304) else f"status {code}"
        return web.Response(status=code, text=body)

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.match_info["seconds"]))
        return web.Response(text="slow")

    async def _drop(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    # -- the recording routes and their faults -----------------------------------------

    def script(self, path: str, *replies: int | Reply) -> None:
        """Answer the next requests to `path` with these, in turn (an int is a status)."""
        with self._lock:
            queue = self._scripts.setdefault(path, deque())
            queue.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    def set_reply(self, path: str, reply: int | Reply | None) -> None:
        """Answer every request to `path` with this once its script is used up (None:
        back to the default 200)."""
        with self._lock:
            if reply is None:
                self._standing.pop(path, None)
            else:
                self._standing[path] = Reply(reply) if isinstance(reply, int) else reply

    def set_latency(self, low: float, high: float | None = None, prefix: str = "/rec/") -> None:
        """Delay the answers to paths under `prefix`: by `low` seconds, or by a random time
        in [low, high] drawn per request. The longest matching prefix applies."""
        with self._lock:
            self._latency[prefix] = (low, low if high is None else high)

    def _delay(self, path: str) -> float:
        with self._lock:
            found = [p for p in self._latency if path.startswith(p)]
            low, high = self._latency[max(found, key=len)] if found else (0.0, 0.0)
            return low if low == high else self._rng.uniform(low, high)

    def recorded(self, prefix: str = "/rec/") -> list[Delivery]:
        """A snapshot of the deliveries whose path starts with `prefix`, in arrival order."""
        with self._lock:
            return [d for d in self.deliveries if d.path.startswith(prefix)]

    def received_hooks(self) -> list[Hook]:
        with self._lock:
            return list(self.hooks)

    def _next_reply(self, path: str, default: Reply) -> Reply:
        with self._lock:
            queue = self._scripts.get(path)
            if queue:
                return queue.popleft()
            return self._standing.get(path, default)

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        d = Delivery(
            request.method,
            request.path,
            request.query_string,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
        )
        with self._lock:
            self.deliveries.append(d)
            n = len(self.deliveries)
        reply = self._next_reply(
            request.path,
            Reply(200, {"Content-Type": "application/json"}, b'{"delivery": %d}' % n),
        )
        delay = self._delay(request.path) if reply.delay is None else reply.delay
        if delay > 0:
            await asyncio.sleep(delay)
        d.done_at, d.status = time.monotonic(), reply.status
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        hook = Hook(
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
        )
        with self._lock:
            self.hooks.append(hook)
        reply = self._next_reply(request.path, Reply(204))
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    # -- a worker pool: capacity that is physical -------------------------------------

    pool_workers: int = 4
    pool_service: float = 0.02
    pool_inside: int = 0  # requests in the origin now, working or waiting for a worker
    pool_peaks: list[int] = field(default_factory=list)  # `pool_inside` at each arrival
    _pool: asyncio.Semaphore | None = None

    async def _pool_request(self, request: web.Request) -> web.Response:
        """W workers, each request holding one for S seconds; the rest wait in line."""
        if self._pool is None:
            self._pool = asyncio.Semaphore(self.pool_workers)
        await request.read()
        self.pool_inside += 1
        with self._lock:
            self.pool_peaks.append(self.pool_inside)
        try:
            async with self._pool:
                await asyncio.sleep(self.pool_service)
        finally:
            self.pool_inside -= 1
        return web.Response(status=201, text="done")

    # -- the listener ---------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/echo{tail:.*}", self._echo)
        app.router.add_get("/bytes/{n}", self._bytes)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_get("/slow/{seconds}", self._slow)
        app.router.add_get("/drop", self._drop)
        app.router.add_route("*", "/rec/{tail:.*}", self._record)
        app.router.add_post("/hooks/{tail:.*}", self._hook)
        app.router.add_route("*", "/pool/{tail:.*}", self._pool_request)
        return app

    def _bind(self) -> socket.socket:
        sock = socket.socket()
        # So that `up()` can listen on this port again while old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        return sock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on, for 'connection refused'."""
    return free_port()


def describe(x: Any) -> str:
    return repr(x)
