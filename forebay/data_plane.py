"""The data-plane ASGI app: the stage chain behind one plain callable, and the runtime's
start and stop on the server's lifespan events."""

from __future__ import annotations

from typing import Any

import structlog

from forebay.app import Runtime
from forebay.gateway.pipeline import build_pipeline

log = structlog.get_logger("forebay")


class DataPlane:
    """The data-plane ASGI app: a plain callable in front of the stage chain."""

    def __init__(self, runtime: Runtime, owns_runtime: bool = True) -> None:
        self.runtime = runtime
        self.owns_runtime = owns_runtime
        self.pipeline: Any = None

    def _build(self) -> None:
        self.pipeline = build_pipeline(self.runtime)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.pipeline(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            # WebSocket upgrades are not proxied yet; refuse them cleanly.
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.owns_runtime:
                        await self.runtime.start()
                    self._build()
                except Exception as e:
                    log.exception("data plane failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.owns_runtime:
                    await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
