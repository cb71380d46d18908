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


# Bookkeeping (claims, outcomes, leases) may grow the file this much past `max_size`, so a
# store full of accepted requests can still deliver them and record that it did.
BOOKKEEPING_HEADROOM = 1.25


class SqliteDatabase:
    """One connection on one thread; `run` executes a function there.

    Two kinds of writes: durable ones (accepting a request, cancelling it, a policy
    change) are fsynced before they return (`synchronous=FULL`) and respect `max_size`;
    bookkeeping (claims, attempt outcomes, leases) is committed with
    `synchronous=NORMAL`: it survives a crash of the process, and after a power loss the
    worst case is a delivery made again, which at-least-once delivery allows. In WAL mode
    the next durable commit also makes every earlier one durable.
    """

    def __init__(self, path: str, schema: str, max_size: int | None = None) -> None:
        self.path = path
        self.schema = schema
        self.max_size = max_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forebay-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._durable: bool | None = None
        self._pages: tuple[int, int] | None = None

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
            pages = max(1, self.max_size // page)
            self._pages = (pages, int(pages * BOOKKEEPING_HEADROOM))
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

    def _mode(self, conn: sqlite3.Connection, durable: bool | None) -> None:
        if durable is None or durable == self._durable:
            return
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        if self._pages:
            conn.execute(f"PRAGMA max_page_count={self._pages[0 if durable else 1]}")
        self._durable = durable

    async def run(self, fn: Callable[[sqlite3.Connection], T], durable: bool | None = True) -> T:
        """Run `fn` on the store's thread; `durable=None` for reads, which need no mode."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite store is not open")

        def call(c: sqlite3.Connection) -> T:
            self._mode(c, durable)
            return fn(c)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call, conn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself after some errors (a full disk among them).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
