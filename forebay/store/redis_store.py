"""The shared store: one Redis database that every gateway instance uses at once.

See docs/redis.md for the data layout, why it is not a Stream, and how to run Redis so
that a 202 stays a promise.
"""

from __future__ import annotations

from typing import Any

from forebay.store.redis_catalog import RedisConsumerStore, RedisEndpointStore, RedisErrorLog
from forebay.store.redis_conn import Durability, check_durability, connect, parse_url
from forebay.store.redis_governor import RedisGovernorStore
from forebay.store.redis_requests import RedisRequestStore


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = parse_url(url)
        self.prefix = parsed.prefix
        self.client: Any = connect(parsed)
        self.endpoints = RedisEndpointStore(self.client, parsed.prefix)
        self.requests = RedisRequestStore(self.client, parsed.prefix, parsed.max_size)
        self.consumers = RedisConsumerStore(self.client, parsed.prefix)
        self.errors = RedisErrorLog(self.client, parsed.prefix)
        self.governor = RedisGovernorStore(self.client, parsed.prefix)

    async def open(self) -> None:
        """Fail at start, with the reason, rather than on the first request."""
        await self.client.ping()

    async def durability(self) -> Durability:
        return await check_durability(self.client)

    async def close(self) -> None:
        await self.client.aclose()
