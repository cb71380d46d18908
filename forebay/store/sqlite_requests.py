"""The durable request queue on SQLite: accepting, looking up, cancelling, replaying and
sweeping requests, and their callbacks' progress. The tables and row mapping are
`sqlite_rows.py`; claiming and finishing (the dispatcher's side) are `sqlite_queue.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from forebay.dispatch.model import AcceptedRequest, DeliveryAttempt, RequestFilter
from forebay.policy.idempotency import KeyRecord
from forebay.policy.request_states import DONE, FINAL, State
from forebay.store.sqlite_db import SqliteDatabase, transaction
from forebay.store.sqlite_queue import SqliteLeases
from forebay.store.sqlite_rows import (
    BODY,
    COLUMNS,
    RESPONSE_BODY,
    SCHEMA,
    advance_lane,
    encode_headers,
    row_to_request,
)

__all__ = ["SCHEMA", "SqliteRequestStore"]

INSERT_REQUEST = (
    "INSERT INTO requests (id, consumer, endpoint_id, endpoint, method, target, headers, "
    "ordering_key, fingerprint, idempotency_key, callback, state, accepted_at, updated_at, "
    "next_at, callback_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)"
)
INSERT_BODY = "INSERT INTO request_bodies (id, body) VALUES (?, ?)"
INSERT_LANE = "INSERT OR IGNORE INTO lanes (ordering_key, next_at) VALUES (?, ?)"


def _request_values(r: AcceptedRequest) -> tuple[Any, ...]:
    return (
        r.id,
        r.consumer,
        r.endpoint_id,
        r.endpoint,
        r.method,
        r.target,
        encode_headers(r.headers),
        r.ordering_key,
        r.fingerprint,
        r.idempotency_key,
        r.callback,
        r.accepted_at,
        r.accepted_at,
        r.accepted_at,
        "pending" if r.callback else None,
    )


class SqliteRequestStore(SqliteLeases):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        def write(c: sqlite3.Connection) -> list[str | None]:
            # Keys first, row by row (each may find an earlier holder); then every stored
            # request in three statements for the whole batch, in acceptance order, so a
            # lane's requests keep their order in `seq`. One call per batch rather than
            # three per request: about a third of the store thread's time at load.
            out = [self._claim_key(c, r, key_ttl) for r in batch]
            rows = [r for r, held in zip(batch, out, strict=True) if held is None]
            c.executemany(INSERT_REQUEST, [_request_values(r) for r in rows])
            c.executemany(INSERT_BODY, [(r.id, r.body) for r in rows])
            lanes: dict[str, float] = {}  # a batch often holds many requests of one lane
            for r in rows:
                lanes.setdefault(r.ordering_key, r.accepted_at)
            c.executemany(INSERT_LANE, lanes.items())
            return out

        return await self._db.run(lambda c: transaction(c, write))

    @staticmethod
    def _claim_key(c: sqlite3.Connection, r: AcceptedRequest, key_ttl: float) -> str | None:
        """None when `r` may be stored (no key, or its key is now `r`'s); else the id of
        the request that holds the key."""
        if r.idempotency_key is None:
            return None
        claimed = c.execute(
            "INSERT INTO idempotency (consumer, key, fingerprint, request_id, "
            "expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (consumer, key) DO "
            "UPDATE SET fingerprint = excluded.fingerprint, request_id = "
            "excluded.request_id, expires_at = excluded.expires_at "
            "WHERE idempotency.expires_at <= ? RETURNING request_id",
            (
                r.consumer,
                r.idempotency_key,
                r.fingerprint,
                r.id,
                r.accepted_at + key_ttl,
                r.accepted_at,
            ),
        ).fetchone()
        if claimed is not None:
            return None
        held = c.execute(
            "SELECT request_id FROM idempotency WHERE consumer = ? AND key = ?",
            (r.consumer, r.idempotency_key),
        ).fetchone()
        return str(held[0])

    async def key(self, consumer: str, key: str, now: float) -> KeyRecord | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT fingerprint, request_id, expires_at FROM idempotency "
                "WHERE consumer = ? AND key = ? AND expires_at > ?",
                (consumer, key, now),
            ).fetchone()
        )
        return KeyRecord(row[0], row[1], row[2]) if row else None

    async def get(self, request_id: str) -> AcceptedRequest | None:
        def read(c: sqlite3.Connection) -> AcceptedRequest | None:
            r = c.execute(
                f"SELECT {COLUMNS}, {BODY}, {RESPONSE_BODY} FROM requests WHERE id = ?",
                (request_id,),
            ).fetchone()
            if r is None:
                return None
            req = row_to_request(r, r["body"], r["response_body"])
            req.history = [
                DeliveryAttempt(*a)
                for a in c.execute(
                    "SELECT number, started_at, status, latency, error FROM attempts "
                    "WHERE request_id = ? ORDER BY number",
                    (request_id,),
                )
            ]
            return req

        return await self._db.run(read)

    async def find(self, where: RequestFilter) -> list[AcceptedRequest]:
        clauses, args = [], []
        for column, value in (
            ("state", where.state),
            ("endpoint_id", where.endpoint_id),
            ("consumer", where.consumer),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(str(value))
        if where.before:
            clauses.append("seq < (SELECT seq FROM requests WHERE id = ?)")
            args.append(where.before)
        sql = f"SELECT {COLUMNS} FROM requests"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC LIMIT ?"
        rows = await self._db.run(lambda c: c.execute(sql, (*args, where.limit)).fetchall())
        return [row_to_request(r) for r in rows]

    async def cancel(self, request_id: str, now: float) -> AcceptedRequest | None:
        def write(c: sqlite3.Connection) -> None:
            row = c.execute(
                "UPDATE requests SET state = 'cancelled', updated_at = ? "
                "WHERE id = ? AND state = 'queued' RETURNING ordering_key, seq",
                (now, request_id),
            ).fetchone()
            if row is None:
                return
            key, seq = row
            lane = c.execute(
                "SELECT lease_owner FROM lanes WHERE ordering_key = ?", (key,)
            ).fetchone()
            earlier = c.execute(
                "SELECT 1 FROM requests WHERE ordering_key = ? AND state IN "
                "('queued', 'in_flight') AND seq < ? LIMIT 1",
                (key, seq),
            ).fetchone()
            if lane is not None and lane[0] is None and earlier is None:
                # It was the lane's head: one waiting for a retry must not hold it back.
                advance_lane(c, key, now)

        await self._db.run(lambda c: transaction(c, write))
        return await self.get(request_id)

    async def replay(self, request_ids: Sequence[str], now: float) -> int:
        def write(c: sqlite3.Connection) -> int:
            n = 0
            for rid in request_ids:
                row = c.execute(
                    "UPDATE requests SET state = 'queued', attempts = 0, next_at = ?, "
                    "updated_at = ? WHERE id = ? AND state = 'dead' RETURNING ordering_key",
                    (now, now, rid),
                ).fetchone()
                if row is None:
                    continue
                n += 1
                c.execute(
                    "INSERT INTO lanes (ordering_key, next_at) VALUES (?, ?) ON CONFLICT "
                    "(ordering_key) DO UPDATE SET next_at = MIN(next_at, excluded.next_at)",
                    (row[0], now),
                )
            return n

        return await self._db.run(lambda c: transaction(c, write))

    async def counts(self) -> dict[str, int]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT state, COUNT(*) FROM requests GROUP BY state").fetchall()
        )
        out = {s.value: 0 for s in State}
        out.update({r[0]: r[1] for r in rows})
        return out

    async def sweep(self, now: float, keep_done: float) -> int:
        done = tuple(s.value for s in FINAL)  # dead letters stay until replayed

        def write(c: sqlite3.Connection) -> int:
            c.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            old: list[Any] = c.execute(
                f"SELECT id FROM requests WHERE state IN ({','.join('?' * len(done))}) "
                "AND updated_at < ?",
                (*done, now - keep_done),
            ).fetchall()
            for (rid,) in old:
                c.execute("DELETE FROM attempts WHERE request_id = ?", (rid,))
                c.execute("DELETE FROM request_bodies WHERE id = ?", (rid,))
                c.execute("DELETE FROM response_bodies WHERE id = ?", (rid,))
                c.execute("DELETE FROM requests WHERE id = ?", (rid,))
            return len(old)

        return await self._db.run(lambda c: transaction(c, write), durable=False)

    async def set_callback_state(self, request_id: str, state: str) -> None:
        await self._db.run(
            lambda c: c.execute(
                "UPDATE requests SET callback_state = ? WHERE id = ?", (state, request_id)
            ),
            durable=False,
        )

    async def pending_callbacks(self, limit: int) -> list[AcceptedRequest]:
        done = tuple(s.value for s in DONE)

        def read(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                f"SELECT id FROM requests WHERE callback_state = 'pending' AND state IN "
                f"({','.join('?' * len(done))}) ORDER BY seq LIMIT ?",
                (*done, limit),
            ).fetchall()
            return [r[0] for r in rows]

        ids = await self._db.run(read)
        found = [await self.get(rid) for rid in ids]
        return [r for r in found if r is not None]
