"""The SQLite database under the embedded store: one file, WAL, one thread.

sqlite3 blocks, so every statement runs on one dedicated thread that owns the
connection; the event loop only awaits its results. `synchronous=FULL` makes a commit
durable once it returns.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs

from pydantic import ByteSize, TypeAdapter, ValidationError

from forebay.errors import ConfigError

T = TypeVar("T")

SCHEMA_VERSION = 2


def sqlite_path(url: str) -> str:
    """`sqlite:///forebay.db` -> `forebay.db`, `sqlite:////var/lib/f.db` -> `/var/lib/f.db`."""
    path = url.removeprefix("sqlite://").partition("?")[0]
    return path[1:] if path.startswith("/") else path


def sqlite_max_size(url: str) -> int | None:
    """`?max_size=500MB`: a cap on the file, so a full queue fails accepts cleanly (503)
    before it fills the disk under everything else."""
    query = parse_qs(url.partition("?")[2])
    if "max_size" not in query:
        return None
    try:
        return int(TypeAdapter(ByteSize).validate_python(query["max_size"][0]))
    except ValidationError as e:
        raise ConfigError(f"{url}: max_size is not a size such as 500MB") from e


class SqliteDatabase:
    """One connection on one thread; `run` executes a function there."""

    def __init__(self, path: str, schema: str, max_size: int | None = None) -> None:
        self.path = path
        self.schema = schema
        self.max_size = max_size
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
        if self.max_size:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={max(1, self.max_size // page)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer Forebay (schema {version}); upgrade Forebay"
            )
        conn.row_factory = sqlite3.Row
        conn.executescript(self.schema)
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


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
