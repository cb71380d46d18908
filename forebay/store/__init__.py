"""Stores behind small protocols: memory (tests), SQLite (the default), Redis (shared)."""

from __future__ import annotations

from typing import Protocol

from forebay.errors import ConfigError
from forebay.store import base
from forebay.store.base import EndpointStore
from forebay.store.consumers import ConsumerStore
from forebay.store.errors_log import ErrorLog


class Store(base.Store, Protocol):
    """Every kind of record a backend keeps: those of `base.Store`, and consumers with
    their keys and the captured errors."""

    @property
    def consumers(self) -> ConsumerStore: ...

    @property
    def errors(self) -> ErrorLog: ...


async def open_store(url: str) -> Store:
    """Open the store a URL names, creating it on first use."""
    if url.startswith("memory://"):
        from forebay.store.memory import MemoryStore

        return MemoryStore(url)
    if url.startswith("sqlite://"):
        from forebay.store.sqlite import SqliteStore

        store = SqliteStore(url)
        await store.open()
        return store
    if url.startswith(("redis://", "rediss://")):
        from forebay.store.redis_store import RedisStore

        shared = RedisStore(url)
        try:
            await shared.open()
        except Exception as e:
            await shared.close()
            raise RuntimeError(f"{url}: cannot reach Redis: {e}") from e
        return shared
    raise ConfigError(
        f"{url}: unknown store; use sqlite:///PATH, redis://HOST:PORT/DB or memory://"
    )


__all__ = ["ConsumerStore", "EndpointStore", "ErrorLog", "Store", "open_store"]
