"""The embedded store: one SQLite file in WAL mode, created on first use."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forebay.catalog.endpoint import Endpoint
from forebay.store.governor import SCHEMA as GOVERNOR_SCHEMA
from forebay.store.governor import SqliteGovernorStore
from forebay.store.sqlite_consumers import SCHEMA as CONSUMERS_SCHEMA
from forebay.store.sqlite_consumers import SqliteConsumerStore
from forebay.store.sqlite_db import SqliteDatabase, sqlite_max_size, sqlite_path, transaction
from forebay.store.sqlite_errors import SCHEMA as ERRORS_SCHEMA
from forebay.store.sqlite_errors import SqliteErrorLog
from forebay.store.sqlite_requests import SCHEMA as REQUESTS_SCHEMA
from forebay.store.sqlite_requests import SqliteRequestStore

ENDPOINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    record TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_version', 0);
"""


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'catalog_version'")


class SqliteEndpointStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def list(self) -> list[Endpoint]:
        rows = await self._db.run(lambda c: c.execute("SELECT record FROM endpoints").fetchall())
        return [Endpoint.model_validate_json(r[0]) for r in rows]

    async def get(self, endpoint_id: str) -> Endpoint | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT record FROM endpoints WHERE id = ?", (endpoint_id,)
            ).fetchone()
        )
        return Endpoint.model_validate_json(row[0]) if row else None

    async def save(self, endpoints: Sequence[Endpoint]) -> None:
        rows = [(e.id, e.method, e.path, e.model_dump_json(by_alias=True)) for e in endpoints]

        def write(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT OR REPLACE INTO endpoints (id, method, path, record) VALUES (?, ?, ?, ?)",
                rows,
            )
            _bump(c)

        await self._db.run(lambda c: transaction(c, write))

    async def delete(self, endpoint_id: str) -> bool:
        def write(c: sqlite3.Connection) -> bool:
            gone = c.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,)).rowcount > 0
            if gone:
                _bump(c)
            return gone

        return await self._db.run(lambda c: transaction(c, write))

    async def version(self) -> int:
        row = await self._db.run(
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
        )
        return int(row[0])


class SqliteStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.db = SqliteDatabase(
            sqlite_path(url),
            ENDPOINTS_SCHEMA + REQUESTS_SCHEMA + CONSUMERS_SCHEMA + ERRORS_SCHEMA + GOVERNOR_SCHEMA,
            sqlite_max_size(url),
        )
        self.endpoints = SqliteEndpointStore(self.db)
        self.requests = SqliteRequestStore(self.db)
        self.consumers = SqliteConsumerStore(self.db)
        self.errors = SqliteErrorLog(self.db)
        self.governor = SqliteGovernorStore(self.db)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()
