"""A real HTTP origin on loopback, run on its own thread so any test can use it.

Routes:
  ANY  /echo/...           the request as JSON (method, path, raw path, query, headers,
                           body length and sha256)
  GET  /bytes/{n}          n bytes, with Content-Length; ?chunked=1 streams without it
  GET  /status/{code}      that status, with a small body
  GET  /slow/{seconds}     answers after a delay
  GET  /drop               closes the connection without an answer
Every request is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body_len: int


@dataclass
class LoopbackOrigin:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/echo{tail:.*}", self._echo)
        app.router.add_get("/bytes/{n}", self._bytes)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_get("/slow/{seconds}", self._slow)
        app.router.add_get("/drop", self._drop)
        return app

    def start(self) -> LoopbackOrigin:
        ready = threading.Event()
        sock = socket.socket()
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]

        async def serve() -> None:
            self._runner = web.AppRunner(self._app(), access_log=None, handler_cancellation=True)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
            ready.set()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            self._loop.close()

        self._thread = threading.Thread(target=main, name="test-origin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test origin did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on, for 'connection refused'."""
    return free_port()


def describe(x: Any) -> str:
    return repr(x)
