"""The embedded store: one SQLite file in WAL mode, created on first use.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the
connection; the event loop only awaits its results. `synchronous=FULL` makes a commit
durable once it returns.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from forebay.catalog.endpoint import Endpoint

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    record TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_version', 0);
"""


def sqlite_path(url: str) -> str:
    """`sqlite:///forebay.db` -> `forebay.db`, `sqlite:////var/lib/f.db` -> `/var/lib/f.db`."""
    path = url.removeprefix("sqlite://")
    return path[1:] if path.startswith("/") else path


class SqliteDatabase:
    """One connection on one thread; `run` executes a function there."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forebay-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer Forebay (schema {version}); upgrade Forebay"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._conn = conn

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, conn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


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

        await self._db.run(lambda c: _transaction(c, write))

    async def delete(self, endpoint_id: str) -> bool:
        def write(c: sqlite3.Connection) -> bool:
            gone = c.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,)).rowcount > 0
            if gone:
                _bump(c)
            return gone

        return await self._db.run(lambda c: _transaction(c, write))

    async def version(self) -> int:
        row = await self._db.run(
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
        )
        return int(row[0])


class SqliteStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.db = SqliteDatabase(sqlite_path(url))
        self.endpoints = SqliteEndpointStore(self.db)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()
