"""Stores behind small protocols: memory (tests), SQLite (the default), Redis (shared)."""

from __future__ import annotations

from typing import Protocol

import structlog

from forebay.errors import ConfigError
from forebay.store import base
from forebay.store.base import EndpointStore
from forebay.store.consumers import ConsumerStore
from forebay.store.errors_log import ErrorLog
from forebay.store.redis_conn import Durability, public_url

log = structlog.get_logger("forebay")


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
            raise RuntimeError(f"{public_url(url)}: cannot reach Redis: {e}") from e
        return shared
    raise ConfigError(
        f"{url}: unknown store; use sqlite:///PATH, redis://HOST:PORT/DB or memory://"
    )


async def report_durability(store: Store) -> Durability:
    """Say at start whether a 202 survives a crash of the store's server: the
    `forebay_store_durable` gauge, and a warning when it may not (docs/redis.md). The
    dashboard shows the answer too."""
    from forebay.store.redis_conn import STORE_DURABLE
    from forebay.store.redis_store import RedisStore

    if not isinstance(store, RedisStore):
        if store.url.startswith("sqlite://"):
            d = Durability(True, "SQLite commits each batch with synchronous=FULL")
        else:
            d = Durability(False, "the memory store forgets everything when the process ends")
        STORE_DURABLE.set(int(bool(d.durable)))
        return d
    d = await store.durability()
    STORE_DURABLE.set(-1 if d.durable is None else int(d.durable))
    if d.durable is not True:
        log.warning(
            "THE REDIS STORE MAY LOSE ACKNOWLEDGED REQUESTS: run Redis with appendonly yes "
            "and appendfsync always (docs/redis.md)",
            store=public_url(store.url),
            detail=d.detail,
        )
    return d


__all__ = ["ConsumerStore", "EndpointStore", "ErrorLog", "Store", "open_store", "report_durability"]
