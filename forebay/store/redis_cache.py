"""The response cache of one instance among several on a Redis store: a local
`MemoryResponseCache` (a hit stays a dictionary lookup) whose invalidations, purges,
clears and async-write holds are published on a Redis channel and applied by the other
instances.

Pub/sub delivers at most once: a subscriber that is disconnected misses what was
published meanwhile. Two rules bound what that costs (see docs/caching.md):

- every message carries a sequence number, taken with the publish in one script, so a
  subscriber that sees a gap knows it missed something and drops its whole cache;
- on every (re)subscription the cache is dropped too, since the messages published
  while the connection was down are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import structlog

from forebay.policy.invalidation import Targets
from forebay.store.cache import MemoryResponseCache
from forebay.tasks import cancel_and_wait

log = structlog.get_logger()

# INCR and PUBLISH in one script: the sequence numbers reach every subscriber in order.
PUBLISH = """
local n = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], n .. '\\n' .. ARGV[1])
return n
"""

RESUBSCRIBE_PAUSE = 0.5  # seconds between attempts while Redis is unreachable


class BroadcastCache(MemoryResponseCache):
    """The local cache, and its changes shared with the other instances."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.instance = os.urandom(8).hex()
        self.stage: Callable[[], Any] = lambda: None  # the Cache stage, once built
        self._client: Any = None
        self._script: Any = None
        self._keys: list[str] = []
        self._remote = False  # applying another instance's message: do not publish it
        self._pending: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._seq: int | None = None
        self.subscribed = asyncio.Event()

    async def connect(self, client: Any, prefix: str) -> None:
        self._client = client
        self._keys = [prefix + "cache:seq", prefix + "cache"]
        self._script = client.register_script(PUBLISH)
        self._listener = asyncio.create_task(self._listen(), name="cache-invalidations")

    async def close(self) -> None:
        await self.published()
        if self._listener is not None:
            await cancel_and_wait([self._listener])

    # -- this instance's changes, applied here and published ------------------------------

    def invalidate(self, targets: Targets) -> int:
        self._publish({"k": "inv", "paths": sorted(targets.paths), "patterns": targets.patterns})
        return super().invalidate(targets)

    def purge_endpoint(self, endpoint_id: str) -> int:
        self._publish({"k": "purge", "endpoint": endpoint_id})
        return super().purge_endpoint(endpoint_id)

    def clear(self) -> int:
        self._publish({"k": "clear"})
        return super().clear()

    def hold(self, token: str, targets: Targets, until: float) -> None:
        message = {"paths": sorted(targets.paths), "patterns": targets.patterns}
        self._publish({"k": "hold", "token": token, "until": until, **message})
        super().hold(token, targets, until)

    def release(self, token: str) -> None:
        self._publish({"k": "release", "token": token})
        super().release(token)

    def _publish(self, message: dict[str, Any]) -> None:
        if self._remote or self._script is None:
            return
        message["o"] = self.instance
        data = json.dumps(message, separators=(",", ":"))
        task = asyncio.get_running_loop().create_task(
            self._script(keys=self._keys, args=[data]), name="cache-publish"
        )
        self._pending.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The others keep what this change should have dropped until their TTL runs
            # out, unless their own connection broke too (then they drop everything).
            log.error("cache invalidation not published", error=repr(task.exception()))

    async def published(self) -> None:
        """Wait until Redis has taken this instance's changes so far (a write's answer is
        relayed only then); a failure was logged and is not raised."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # -- the others' changes ---------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._keys[1])
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        # What was published before this point is lost to us.
                        self._seq = None
                        self._apply({"k": "clear"})
                        self.subscribed.set()
                    elif message["type"] == "message":
                        self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.subscribed.clear()
                log.warning("cache invalidation channel lost; resubscribing", error=repr(e))
                await asyncio.sleep(RESUBSCRIBE_PAUSE)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _receive(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        seq = int(head)
        if self._seq is not None and seq != self._seq + 1:
            log.warning("cache invalidations missed; dropping the cache", missed=seq - self._seq)
            self._apply({"k": "clear"})
        self._seq = seq
        message = json.loads(body)
        if message["o"] != self.instance:
            self._apply(message)

    def _apply(self, message: dict[str, Any]) -> None:
        stage = self.stage() or self  # the stage also detaches fetches in progress
        kind = message["k"]
        self._remote = True
        try:
            if kind == "inv":
                stage.invalidate(_targets(message))
            elif kind == "purge":
                stage.purge_endpoint(message["endpoint"])
            elif kind == "clear":
                stage.clear()
            elif kind == "hold":
                super().hold(message["token"], _targets(message), message["until"])
            elif kind == "release":
                super().release(message["token"])
        finally:
            self._remote = False


def _targets(message: dict[str, Any]) -> Targets:
    return Targets(frozenset(message["paths"]), tuple(message["patterns"]))
