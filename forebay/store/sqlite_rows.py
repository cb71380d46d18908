"""The request queue's tables, and rows turned into records.

A lane is a row per ordering key with pending work: when it is next due and who holds
it. Claiming reads due lanes (an index on `next_at`), never the whole backlog.
"""

from __future__ import annotations

import json
import sqlite3

from forebay.dispatch.model import AcceptedRequest, Finish, StoredResponse
from forebay.policy.request_states import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    consumer TEXT NOT NULL,
    endpoint_id TEXT,
    endpoint TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    headers TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    idempotency_key TEXT,
    callback TEXT,
    state TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    response_status INTEGER,
    response_headers TEXT,
    callback_state TEXT
);
CREATE INDEX IF NOT EXISTS requests_pending ON requests (ordering_key, seq)
    WHERE state IN ('queued', 'in_flight');
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state, seq);
CREATE TABLE IF NOT EXISTS attempts (
    request_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    status INTEGER,
    latency REAL,
    error TEXT,
    PRIMARY KEY (request_id, number)
);
-- Bodies live apart from the rows that change on every claim and attempt, so updating a
-- request's state never rewrites (or needs free pages for) a large body.
CREATE TABLE IF NOT EXISTS request_bodies (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS response_bodies (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lanes (
    ordering_key TEXT PRIMARY KEY,
    next_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS lanes_due ON lanes (next_at);
CREATE TABLE IF NOT EXISTS idempotency (
    consumer TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (consumer, key)
);
"""

COLUMNS = (
    "id, consumer, endpoint_id, endpoint, method, target, headers, ordering_key, "
    "fingerprint, idempotency_key, callback, state, accepted_at, updated_at, attempts, "
    "next_at, response_status, response_headers, callback_state"
)


BODY = "(SELECT body FROM request_bodies b WHERE b.id = requests.id) AS body"
RESPONSE_BODY = "(SELECT body FROM response_bodies b WHERE b.id = requests.id) AS response_body"


def encode_headers(headers: list[tuple[str, str]]) -> str:
    """A request's headers as stored: one `name:value` per line, about a quarter of the
    cost of JSON on the accept path. Names are tokens (no colon) and no field value holds
    a line break (RFC 9110 5.5); should a header ever break that, or the text look like
    JSON, the headers are stored as JSON."""
    text = "\n".join([f"{n}:{v}" for n, v in headers])
    if headers and (
        text.count("\n") != len(headers) - 1
        or text.startswith("[")
        or any(":" in n for n, _ in headers)
    ):
        return json.dumps(headers)
    return text


def decode_headers(text: str) -> list[tuple[str, str]]:
    """`encode_headers` undone; a JSON list (a list of pairs, as stored before) too."""
    if text.startswith("["):
        return [(n, v) for n, v in json.loads(text)]
    if not text:
        return []
    return [(n, v) for n, _, v in (line.partition(":") for line in text.split("\n"))]


def row_to_request(
    r: sqlite3.Row, body: bytes = b"", response_body: bytes | None = None
) -> AcceptedRequest:
    response = None
    if r["response_status"] is not None:
        response = StoredResponse(
            r["response_status"],
            [tuple(h) for h in json.loads(r["response_headers"])],
            response_body or b"",
        )
    return AcceptedRequest(
        id=r["id"],
        consumer=r["consumer"],
        endpoint_id=r["endpoint_id"],
        endpoint=r["endpoint"],
        method=r["method"],
        target=r["target"],
        headers=decode_headers(r["headers"]),
        body=body,
        ordering_key=r["ordering_key"],
        fingerprint=r["fingerprint"],
        idempotency_key=r["idempotency_key"],
        callback=r["callback"],
        state=State(r["state"]),
        accepted_at=r["accepted_at"],
        updated_at=r["updated_at"],
        attempts=r["attempts"],
        next_attempt_at=r["next_at"],
        response=response,
        callback_state=r["callback_state"],
    )


def advance_lane(c: sqlite3.Connection, key: str, now: float) -> None:
    """After the head of a lane is done: point the lane at its next request, or drop it."""
    head = c.execute(
        "SELECT next_at FROM requests WHERE ordering_key = ? AND state IN "
        "('queued', 'in_flight') ORDER BY seq LIMIT 1",
        (key,),
    ).fetchone()
    if head is None:
        c.execute("DELETE FROM lanes WHERE ordering_key = ?", (key,))
    else:
        c.execute(
            "UPDATE lanes SET next_at = ?, lease_owner = NULL, lease_until = NULL "
            "WHERE ordering_key = ?",
            (max(now, head[0]), key),
        )


def record_finish(
    c: sqlite3.Connection, request_id: str, owner: str, result: Finish, now: float, keep_body: bool
) -> bool:
    """Record one attempt and its consequence, inside the caller's transaction; False if
    `owner` no longer holds the lease (it ran out and another owner took the request)."""
    row = c.execute(
        "SELECT ordering_key, attempts FROM requests WHERE id = ? AND state = "
        "'in_flight' AND lease_owner = ?",
        (request_id, owner),
    ).fetchone()
    if row is None:
        return False
    key, attempts = row
    a = result.attempt
    number = c.execute(
        "SELECT COUNT(*) + 1 FROM attempts WHERE request_id = ?", (request_id,)
    ).fetchone()[0]
    c.execute(
        "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
        (request_id, number, a.started_at, a.status, a.latency, a.error),
    )
    resp = result.response
    c.execute(
        "UPDATE requests SET state = ?, attempts = ?, next_at = ?, updated_at = ?, "
        "lease_owner = NULL, lease_until = NULL, response_status = ?, "
        "response_headers = ? WHERE id = ?",
        (
            result.state.value,
            attempts + result.counts,
            result.next_attempt_at or now,
            now,
            resp.status if resp else None,
            json.dumps(resp.headers) if resp else None,
            request_id,
        ),
    )
    if resp is not None and resp.body and keep_body:
        c.execute(
            "INSERT OR REPLACE INTO response_bodies (id, body) VALUES (?, ?)",
            (request_id, resp.body),
        )
    else:  # not an earlier attempt's body under this attempt's status
        c.execute("DELETE FROM response_bodies WHERE id = ?", (request_id,))
    advance_lane(c, key, now)
    return True


def release_one(c: sqlite3.Connection, request_id: str, owner: str, now: float) -> int:
    """Hand back one claimed request, unattempted, and its lane with it."""
    row = c.execute(
        "UPDATE requests SET state = 'queued', lease_owner = NULL, lease_until = NULL, "
        "updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'in_flight' "
        "RETURNING ordering_key",
        (now, request_id, owner),
    ).fetchone()
    if row is None:
        return 0
    c.execute(
        "UPDATE lanes SET lease_owner = NULL, lease_until = NULL, next_at = ? "
        "WHERE ordering_key = ? AND lease_owner = ?",
        (now, row[0], owner),
    )
    return 1
