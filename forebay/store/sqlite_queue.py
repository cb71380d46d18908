"""The dispatcher's side of the SQLite request queue: lease the heads of due lanes,
renew the leases, and finish or hand back what was leased.

Claiming reads due lanes, never the whole backlog, so a million requests queued behind
one key cost nothing to the other keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forebay.dispatch.model import AcceptedRequest, Finish
from forebay.policy.request_states import State
from forebay.store.sqlite_db import SqliteDatabase, transaction
from forebay.store.sqlite_rows import BODY, COLUMNS, record_finish, release_one, row_to_request


class SqliteLeases:
    _db: SqliteDatabase

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
