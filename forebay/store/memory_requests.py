"""The request queue in process memory, with the same lane semantics as SQLite's."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from forebay.dispatch.model import AcceptedRequest, Finish, RequestFilter, StoredResponse
from forebay.policy.idempotency import KeyRecord
from forebay.policy.request_states import DONE, FINAL, PENDING, State


@dataclass(slots=True)
class _Lane:
    next_at: float
    owner: str | None = None
    lease_until: float | None = None


@dataclass(slots=True)
class _Row:
    seq: int
    request: AcceptedRequest
    owner: str | None = None
    lease_until: float | None = None


class MemoryRequestStore:
    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._lanes: dict[str, _Lane] = {}
        self._keys: dict[tuple[str, str], KeyRecord] = {}
        self._seq = itertools.count(1)

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        out: list[str | None] = []
        for r in batch:
            if r.idempotency_key is not None:
                k = (r.consumer, r.idempotency_key)
                held = self._keys.get(k)
                if held is not None and held.expires_at > r.accepted_at:
                    out.append(held.request_id)
                    continue
                self._keys[k] = KeyRecord(r.fingerprint, r.id, r.accepted_at + key_ttl)
            stored = copy.deepcopy(r)
            stored.state = State.QUEUED
            stored.callback_state = "pending" if r.callback else None
            self._rows[r.id] = _Row(next(self._seq), stored)
            self._lanes.setdefault(r.ordering_key, _Lane(r.accepted_at))
            out.append(None)
        return out

    async def key(self, consumer: str, key: str, now: float) -> KeyRecord | None:
        held = self._keys.get((consumer, key))
        return held if held is not None and held.expires_at > now else None

    async def get(self, request_id: str) -> AcceptedRequest | None:
        row = self._rows.get(request_id)
        return copy.deepcopy(row.request) if row else None

    async def find(self, where: RequestFilter) -> list[AcceptedRequest]:
        if where.before is not None and where.before not in self._rows:
            return []  # as SQLite: nothing is older than an unknown cursor
        before = self._rows[where.before].seq if where.before is not None else None
        rows = sorted(self._rows.values(), key=lambda r: r.seq, reverse=True)
        out: list[AcceptedRequest] = []
        for row in rows:
            if len(out) >= where.limit:
                break
            r = row.request
            if (
                (where.state is None or r.state == where.state)
                and (where.endpoint_id is None or r.endpoint_id == where.endpoint_id)
                and (where.consumer is None or r.consumer == where.consumer)
                and (before is None or row.seq < before)
            ):
                brief = copy.copy(r)
                brief.body, brief.history = b"", []
                if r.response is not None:
                    brief.response = StoredResponse(r.response.status, r.response.headers, b"")
                out.append(copy.deepcopy(brief))
        return out

    def _head(self, key: str) -> _Row | None:
        """The lane's request in flight, if any (a replayed request may sort before it),
        else its earliest queued one."""
        pending = [
            row
            for row in self._rows.values()
            if row.request.ordering_key == key and row.request.state in PENDING
        ]
        return (
            min(pending, key=lambda row: (row.request.state != State.IN_FLIGHT, row.seq))
            if pending
            else None
        )

    def _advance(self, key: str, now: float) -> None:
        head = self._head(key)
        if head is None:
            self._lanes.pop(key, None)
        else:
            self._lanes[key] = _Lane(max(now, head.request.next_attempt_at))

    async def claim(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AcceptedRequest]:
        due = sorted(
            (lane.next_at, key)
            for key, lane in self._lanes.items()
            if lane.next_at <= now and (lane.lease_until is None or lane.lease_until < now)
        )
        claimed: list[AcceptedRequest] = []
        for _, key in due:
            if len(claimed) >= limit:
                break
            head = self._head(key)
            if head is None:
                del self._lanes[key]
                continue
            if head.request.state == State.QUEUED and head.request.next_attempt_at > now:
                self._lanes[key].next_at = head.request.next_attempt_at
                continue
            head.request.state = State.IN_FLIGHT
            head.request.updated_at = now
            head.owner, head.lease_until = owner, lease_until
            self._lanes[key].owner, self._lanes[key].lease_until = owner, lease_until
            claimed.append(copy.deepcopy(head.request))
        return claimed

    async def renew(self, ids: Sequence[str], owner: str, lease_until: float) -> None:
        for rid in ids:
            row = self._rows.get(rid)
            if row and row.owner == owner and row.request.state == State.IN_FLIGHT:
                row.lease_until = lease_until
                lane = self._lanes.get(row.request.ordering_key)
                if lane and lane.owner == owner:
                    lane.lease_until = lease_until

    async def finish(self, request_id: str, owner: str, result: Finish, now: float) -> bool:
        row = self._rows.get(request_id)
        if row is None or row.owner != owner or row.request.state != State.IN_FLIGHT:
            return False
        r = row.request
        attempt = copy.copy(result.attempt)
        attempt.number = len(r.history) + 1
        r.history.append(attempt)
        r.state = result.state
        r.attempts += result.counts
        r.next_attempt_at = result.next_attempt_at or now
        r.updated_at = now
        r.response = copy.deepcopy(result.response)
        row.owner = row.lease_until = None
        self._advance(r.ordering_key, now)
        return True

    async def finish_many(
        self, results: Sequence[tuple[str, Finish]], owner: str, now: float
    ) -> list[bool]:
        return [await self.finish(rid, owner, result, now) for rid, result in results]

    async def release(self, owner: str, now: float, ids: Sequence[str] | None = None) -> int:
        n = 0
        rows = (
            self._rows.values() if ids is None else [self._rows[i] for i in ids if i in self._rows]
        )
        keys = set()
        for row in rows:
            if row.owner == owner and row.request.state == State.IN_FLIGHT:
                row.request.state, row.owner, row.lease_until = State.QUEUED, None, None
                row.request.updated_at = now
                keys.add(row.request.ordering_key)
                n += 1
        for key, lane in self._lanes.items():
            if lane.owner == owner and (ids is None or key in keys):
                lane.owner, lane.lease_until, lane.next_at = None, None, now
        return n

    async def lease_owners(self) -> list[str]:
        return sorted({lane.owner for lane in self._lanes.values() if lane.owner})

    async def cancel(self, request_id: str, now: float) -> AcceptedRequest | None:
        row = self._rows.get(request_id)
        if row is None:
            return None
        if row.request.state == State.QUEUED:
            was_head = self._head(row.request.ordering_key) is row
            row.request.state, row.request.updated_at = State.CANCELLED, now
            if was_head:  # a head waiting for a retry must not hold its lane back
                self._advance(row.request.ordering_key, now)
        return copy.deepcopy(row.request)

    async def replay(self, request_ids: Sequence[str], now: float) -> int:
        n = 0
        for rid in request_ids:
            row = self._rows.get(rid)
            if row is None or row.request.state != State.DEAD:
                continue
            r = row.request
            r.state, r.attempts, r.next_attempt_at, r.updated_at = State.QUEUED, 0, now, now
            lane = self._lanes.setdefault(r.ordering_key, _Lane(now))
            lane.next_at = min(lane.next_at, now)
            n += 1
        return n

    async def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in State}
        for row in self._rows.values():
            out[row.request.state.value] += 1
        return out

    async def sweep(self, now: float, keep_done: float) -> int:
        self._keys = {k: v for k, v in self._keys.items() if v.expires_at > now}
        old = [
            rid
            for rid, row in self._rows.items()
            if row.request.state in FINAL and row.request.updated_at < now - keep_done
        ]
        for rid in old:
            del self._rows[rid]
        return len(old)

    async def set_callback_state(self, request_id: str, state: str) -> None:
        row = self._rows.get(request_id)
        if row is not None:
            row.request.callback_state = state

    async def pending_callbacks(self, limit: int) -> list[AcceptedRequest]:
        rows = sorted(self._rows.values(), key=lambda r: r.seq)
        due = [
            copy.deepcopy(r.request)
            for r in rows
            if r.request.callback_state == "pending" and r.request.state in DONE
        ]
        return due[:limit]
