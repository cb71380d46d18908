"""Stores behind small protocols: memory (tests), SQLite (the default), Redis (shared)."""

from __future__ import annotations

from forebay.errors import ConfigError
from forebay.store.base import EndpointStore, Store


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
        raise ConfigError(f"{url}: the Redis store is not available in this version yet")
    raise ConfigError(f"{url}: unknown store; use sqlite:///PATH or memory://")


__all__ = ["EndpointStore", "Store", "open_store"]
