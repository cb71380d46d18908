"""An aiohttp application served on the loopback interface from its own event loop, in a
daemon thread: what the test origins (`support.origin`, `support.crud`) are built on. It can
stop listening (`down`) and listen again on the same port (`up`) while it runs."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web


@dataclass
class LoopbackServer:
    host: str = "127.0.0.1"
    port: int = 0
    loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    # What the subclass is called in its thread's name and in errors, and how aiohttp runs it.
    thread_name: ClassVar[str] = "loopback-server"
    what: ClassVar[str] = "loopback server"
    handler_cancellation: ClassVar[bool] = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        raise NotImplementedError

    def _bind(self) -> socket.socket | None:
        """The socket to serve on, already bound (which sets `port`); None to have aiohttp
        listen on `host`:`port` itself."""
        return None

    async def _listen(self, sock: socket.socket | None = None) -> None:
        kwargs: dict[str, Any] = {"access_log": None, "shutdown_timeout": 0.5}
        if self.handler_cancellation:
            kwargs["handler_cancellation"] = True
        self._runner = web.AppRunner(self._app(), **kwargs)
        await self._runner.setup()
        if sock is None:
            site: web.BaseSite = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        else:
            site = web.SockSite(self._runner, sock)
        await site.start()

    def _on_loop(self, coro: Any, timeout: float = 10) -> Any:
        assert self.loop is not None, f"the {self.what} is not running"
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def down(self) -> None:
        """Stop listening and close every connection: clients get "connection refused"
        until `up()`. Requests being answered are cut off."""

        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

        self._on_loop(close())

    def up(self) -> None:
        """Listen again, on the same port."""
        if self._runner is None:
            self._on_loop(self._listen())

    def start(self) -> Self:
        ready = threading.Event()
        sock = self._bind()

        async def serve() -> None:
            await self._listen(sock)
            ready.set()

        def main() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(serve())
            self.loop.run_forever()
            if self._runner is not None:
                self.loop.run_until_complete(self._runner.cleanup())
            self.loop.close()

        self._thread = threading.Thread(target=main, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.what} did not start")
        return self

    def stop(self) -> None:
        if self.loop and self._thread:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop = None
