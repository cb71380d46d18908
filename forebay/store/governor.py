"""The governors' shared limit (forebay/policy/shared_limit.py), kept in memory for one
process or in the SQLite file for the `--workers` processes that share it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from forebay.policy.shared_limit import Share, SharedLimit, SharingRules, leave, sync
from forebay.store.sqlite_db import SqliteDatabase, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS governor_share (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    record TEXT NOT NULL
);
"""


class MemoryGovernorStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._record: SharedLimit | None = None
        self._clock = clock

    async def sync(
        self, member: str, ratio: float, hold_for: float, initial: float, rules: SharingRules
    ) -> Share:
        self._record, share = sync(
            self._record, member, ratio, hold_for, initial, self._clock(), rules
        )
        return share

    async def leave(self, member: str) -> None:
        self._record = leave(self._record, member)


class SqliteGovernorStore:
    """One row, read and written in one `BEGIN IMMEDIATE` transaction, so the worker
    processes' syncs never interleave. Not fsynced: after a crash the governors start
    over, as they do after a restart."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def sync(
        self, member: str, ratio: float, hold_for: float, initial: float, rules: SharingRules
    ) -> Share:
        def write(c: sqlite3.Connection) -> Share:
            record, share = sync(_read(c), member, ratio, hold_for, initial, time.time(), rules)
            _write(c, record)
            return share

        return await self._db.run(lambda c: transaction(c, write), durable=False)

    async def leave(self, member: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            record = leave(_read(c), member)
            if record is not None:
                _write(c, record)

        await self._db.run(lambda c: transaction(c, write), durable=False)


def _read(c: sqlite3.Connection) -> SharedLimit | None:
    row = c.execute("SELECT record FROM governor_share WHERE id = 1").fetchone()
    if row is None:
        return None
    fields: dict[str, Any] = json.loads(row[0])
    return SharedLimit(**fields)


def _write(c: sqlite3.Connection, record: SharedLimit) -> None:
    text = json.dumps(
        {
            "limit": record.limit,
            "changed_at": record.changed_at,
            "direction": record.direction,
            "hold_until": record.hold_until,
            "members": record.members,
        }
    )
    c.execute("INSERT OR REPLACE INTO governor_share (id, record) VALUES (1, ?)", (text,))
