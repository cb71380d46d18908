"""The durable request queue on SQLite (tables and row mapping in `sqlite_rows.py`).

Claiming reads due lanes, never the whole backlog, so a million requests queued behind
one key cost nothing to the other keys.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from forebay.dispatch.model import AcceptedRequest, DeliveryAttempt, Finish, RequestFilter
from forebay.policy.idempotency import KeyRecord
from forebay.policy.request_states import DONE, FINAL, State
from forebay.store.sqlite_db import SqliteDatabase, transaction
from forebay.store.sqlite_rows import (
    BODY,
    COLUMNS,
    RESPONSE_BODY,
    SCHEMA,
    advance_lane,
    record_finish,
    release_one,
    row_to_request,
)

__all__ = ["SCHEMA", "SqliteRequestStore"]


class SqliteRequestStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        def write(c: sqlite3.Connection) -> list[str | None]:
            out: list[str | None] = []
            for r in batch:
                if r.idempotency_key is not None:
                    cur = c.execute(
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
                    if cur is None:
                        held = c.execute(
                            "SELECT request_id FROM idempotency WHERE consumer = ? AND key = ?",
                            (r.consumer, r.idempotency_key),
                        ).fetchone()
                        out.append(held[0])
                        continue
                c.execute(
                    "INSERT INTO requests (id, consumer, endpoint_id, endpoint, method, target, "
                    "headers, ordering_key, fingerprint, idempotency_key, callback, state, "
                    "accepted_at, updated_at, next_at, callback_state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (
                        r.id,
                        r.consumer,
                        r.endpoint_id,
                        r.endpoint,
                        r.method,
                        r.target,
                        json.dumps(r.headers),
                        r.ordering_key,
                        r.fingerprint,
                        r.idempotency_key,
                        r.callback,
                        r.accepted_at,
                        r.accepted_at,
                        r.accepted_at,
                        "pending" if r.callback else None,
                    ),
                )
                c.execute("INSERT INTO request_bodies (id, body) VALUES (?, ?)", (r.id, r.body))
                c.execute(
                    "INSERT OR IGNORE INTO lanes (ordering_key, next_at) VALUES (?, ?)",
                    (r.ordering_key, r.accepted_at),
                )
                out.append(None)
            return out

        return await self._db.run(lambda c: transaction(c, write))

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

    async def claim(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AcceptedRequest]:
        def write(c: sqlite3.Connection) -> list[AcceptedRequest]:
            claimed: list[AcceptedRequest] = []
            lanes = c.execute(
                "SELECT ordering_key, lease_owner FROM lanes WHERE next_at <= ? AND "
                "(lease_until IS NULL OR lease_until < ?) ORDER BY next_at LIMIT ?",
                (now, now, limit * 2),
            ).fetchall()
            for key, leased in lanes:
                if len(claimed) >= limit:
                    break
                head = None
                if leased is not None:
                    # A lease ran out: claim its request again, even if a replayed one
                    # sorts before it.
                    head = c.execute(
                        f"SELECT {COLUMNS}, {BODY} FROM requests WHERE state = 'in_flight' "
                        "AND ordering_key = ? LIMIT 1",
                        (key,),
                    ).fetchone()
                head = (
                    head
                    or c.execute(
                        f"SELECT {COLUMNS}, {BODY} FROM requests WHERE ordering_key = ? AND "
                        "state IN ('queued', 'in_flight') ORDER BY seq LIMIT 1",
                        (key,),
                    ).fetchone()
                )
                if head is None:
                    c.execute("DELETE FROM lanes WHERE ordering_key = ?", (key,))
                    continue
                if head["state"] == State.QUEUED and head["next_at"] > now:
                    c.execute(
                        "UPDATE lanes SET next_at = ? WHERE ordering_key = ?",
                        (head["next_at"], key),
                    )
                    continue
                c.execute(
                    "UPDATE requests SET state = 'in_flight', lease_owner = ?, lease_until = ?, "
                    "updated_at = ? WHERE id = ?",
                    (owner, lease_until, now, head["id"]),
                )
                c.execute(
                    "UPDATE lanes SET lease_owner = ?, lease_until = ? WHERE ordering_key = ?",
                    (owner, lease_until, key),
                )
                req = row_to_request(head, head["body"])
                req.state, req.updated_at = State.IN_FLIGHT, now
                claimed.append(req)
            return claimed

        return await self._db.run(lambda c: transaction(c, write), durable=False)

    async def renew(self, ids: Sequence[str], owner: str, lease_until: float) -> None:
        def write(c: sqlite3.Connection) -> None:
            for rid in ids:
                c.execute(
                    "UPDATE requests SET lease_until = ? WHERE id = ? AND lease_owner = ? "
                    "AND state = 'in_flight'",
                    (lease_until, rid, owner),
                )
                c.execute(
                    "UPDATE lanes SET lease_until = ? WHERE lease_owner = ? AND ordering_key = "
                    "(SELECT ordering_key FROM requests WHERE id = ?)",
                    (lease_until, owner, rid),
                )

        await self._db.run(lambda c: transaction(c, write), durable=False)

    async def finish(self, request_id: str, owner: str, result: Finish, now: float) -> bool:
        return (await self.finish_many([(request_id, result)], owner, now))[0]

    async def finish_many(
        self, results: Sequence[tuple[str, Finish]], owner: str, now: float
    ) -> list[bool]:
        def write(c: sqlite3.Connection, keep_body: bool) -> list[bool]:
            return [record_finish(c, rid, owner, result, now, keep_body) for rid, result in results]

        try:
            return await self._db.run(lambda c: transaction(c, lambda c: write(c, True)), False)
        except sqlite3.OperationalError as e:
            if "full" not in str(e):
                raise
            # A full store still records the outcomes; only the response bodies are dropped.
            return await self._db.run(lambda c: transaction(c, lambda c: write(c, False)), False)

    async def release(self, owner: str, now: float, ids: Sequence[str] | None = None) -> int:
        def write(c: sqlite3.Connection) -> int:
            if ids is not None:
                return sum(release_one(c, rid, owner, now) for rid in ids)
            n = c.execute(
                "UPDATE requests SET state = 'queued', lease_owner = NULL, lease_until = NULL, "
                "updated_at = ? WHERE lease_owner = ? AND state = 'in_flight'",
                (now, owner),
            ).rowcount
            c.execute(
                "UPDATE lanes SET lease_owner = NULL, lease_until = NULL, next_at = ? "
                "WHERE lease_owner = ?",
                (now, owner),
            )
            return int(n)

        return await self._db.run(lambda c: transaction(c, write), durable=False)

    async def lease_owners(self) -> list[str]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT DISTINCT lease_owner FROM lanes WHERE lease_owner IS NOT NULL"
            ).fetchall()
        )
        return [r[0] for r in rows]

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
