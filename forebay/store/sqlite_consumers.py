"""Consumers and API keys in the embedded SQLite store."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence

from forebay.store.consumers import ApiKey, Consumer
from forebay.store.sqlite_db import SqliteDatabase, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_by_consumer ON api_keys (consumer);
INSERT OR IGNORE INTO meta (key, value) VALUES ('consumers_version', 0);
"""


def _bump(c: sqlite3.Connection) -> None:
    c.execute("UPDATE meta SET value = value + 1 WHERE key = 'consumers_version'")


class SqliteConsumerStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def list(self) -> list[Consumer]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT record FROM consumers ORDER BY name").fetchall(), None
        )
        return [Consumer.model_validate_json(r[0]) for r in rows]

    async def get(self, name: str) -> Consumer | None:
        row = await self._db.run(
            lambda c: c.execute("SELECT record FROM consumers WHERE name = ?", (name,)).fetchone(),
            None,
        )
        return Consumer.model_validate_json(row[0]) if row else None

    async def save(self, consumer: Consumer) -> None:
        record = consumer.model_dump_json()

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO consumers (name, record) VALUES (?, ?)",
                (consumer.name, record),
            )
            _bump(c)

        await self._db.run(lambda c: transaction(c, write))

    async def delete(self, name: str) -> bool:
        def write(c: sqlite3.Connection) -> bool:
            gone = c.execute("DELETE FROM consumers WHERE name = ?", (name,)).rowcount > 0
            if gone:
                c.execute("DELETE FROM api_keys WHERE consumer = ?", (name,))
                _bump(c)
            return gone

        return await self._db.run(lambda c: transaction(c, write))

    async def keys(self, consumer: str | None = None) -> builtins.list[ApiKey]:
        def read(c: sqlite3.Connection) -> list[sqlite3.Row]:
            if consumer is None:
                return c.execute("SELECT record FROM api_keys ORDER BY created_at, id").fetchall()
            return c.execute(
                "SELECT record FROM api_keys WHERE consumer = ? ORDER BY created_at, id",
                (consumer,),
            ).fetchall()

        return [ApiKey.model_validate_json(r[0]) for r in await self._db.run(read, None)]

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._db.run(
            lambda c: c.execute("SELECT record FROM api_keys WHERE id = ?", (key_id,)).fetchone(),
            None,
        )
        return ApiKey.model_validate_json(row[0]) if row else None

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        rows = [(k.id, k.consumer, k.created_at, k.model_dump_json()) for k in keys]

        def write(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT OR REPLACE INTO api_keys (id, consumer, created_at, record) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            _bump(c)

        await self._db.run(lambda c: transaction(c, write))

    async def revoke_key(self, key_id: str, now: float) -> bool:
        def write(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT record FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                return False
            key = ApiKey.model_validate_json(row[0])
            if not key.active:
                return False
            key.revoked_at = now
            c.execute(
                "UPDATE api_keys SET record = ? WHERE id = ?", (key.model_dump_json(), key_id)
            )
            _bump(c)
            return True

        return await self._db.run(lambda c: transaction(c, write))

    async def delete_keys(self, key_ids: Sequence[str]) -> int:
        def write(c: sqlite3.Connection) -> int:
            gone = sum(
                c.execute("DELETE FROM api_keys WHERE id = ?", (k,)).rowcount for k in key_ids
            )
            if gone:
                _bump(c)
            return gone

        return await self._db.run(lambda c: transaction(c, write))

    async def version(self) -> int:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT value FROM meta WHERE key = 'consumers_version'"
            ).fetchone(),
            None,
        )
        return int(row[0])
