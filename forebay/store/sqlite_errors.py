"""Captured errors in the embedded SQLite store: the newest few per endpoint."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forebay.store.errors_log import CapturedError
from forebay.store.sqlite_db import SqliteDatabase, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS captured_errors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL,
    at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS captured_errors_by_endpoint ON captured_errors (endpoint_id, seq);
"""


class SqliteErrorLog:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, errors: Sequence[CapturedError], keep: int) -> None:
        rows = [(e.endpoint_id, e.at, e.model_dump_json()) for e in errors]
        touched = {e.endpoint_id for e in errors}

        def write(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO captured_errors (endpoint_id, at, record) VALUES (?, ?, ?)", rows
            )
            for endpoint_id in touched:
                c.execute(
                    "DELETE FROM captured_errors WHERE endpoint_id = ? AND seq NOT IN "
                    "(SELECT seq FROM captured_errors WHERE endpoint_id = ? "
                    "ORDER BY seq DESC LIMIT ?)",
                    (endpoint_id, endpoint_id, keep),
                )

        # Samples for the dashboard: a crash may lose the last second of them.
        await self._db.run(lambda c: transaction(c, write), durable=False)

    async def recent(self, endpoint_id: str | None = None, limit: int = 100) -> list[CapturedError]:
        def read(c: sqlite3.Connection) -> list[sqlite3.Row]:
            if endpoint_id is None:
                return c.execute(
                    "SELECT record FROM captured_errors ORDER BY at DESC, seq DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            return c.execute(
                "SELECT record FROM captured_errors WHERE endpoint_id = ? "
                "ORDER BY at DESC, seq DESC LIMIT ?",
                (endpoint_id, limit),
            ).fetchall()

        return [CapturedError.model_validate_json(r[0]) for r in await self._db.run(read, None)]

    async def clear(self, endpoint_id: str | None = None) -> int:
        def write(c: sqlite3.Connection) -> int:
            if endpoint_id is None:
                return c.execute("DELETE FROM captured_errors").rowcount
            return c.execute(
                "DELETE FROM captured_errors WHERE endpoint_id = ?", (endpoint_id,)
            ).rowcount

        return await self._db.run(lambda c: transaction(c, write))
