"""Behaviour every RequestStore backend shares: lanes, leases, idempotency keys.

Clocks are plain floats passed in; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forebay.dispatch.model import (
    AcceptedRequest,
    DeliveryAttempt,
    Finish,
    RequestFilter,
    StoredResponse,
)
from forebay.policy.idempotency import KeyRecord, fingerprint
from forebay.policy.request_states import FINAL, PENDING, State
from forebay.store import Store, open_store
from forebay.store.base import RequestStore

T0 = 1_700_000_000.0
TTL = 60.0
LEASE = 30.0

_seq = itertools.count(1)


def make(
    key: str = "k",
    *,
    at: float = T0,
    consumer: str = "alice",
    endpoint_id: str | None = "ep_orders",
    idem: str | None = None,
    callback: str | None = None,
    body: bytes = b'{"n": 1}',
    headers: list[tuple[str, str]] | None = None,
) -> AcceptedRequest:
    """A fresh request; ids increase with every call, as real ids do with time."""
    target = "/orders?source=test"
    return AcceptedRequest(
        id=f"r{next(_seq):08d}",
        consumer=consumer,
        endpoint_id=endpoint_id,
        endpoint="POST /orders",
        method="POST",
        target=target,
        headers=headers if headers is not None else [("content-type", "application/json")],
        body=body,
        ordering_key=key,
        fingerprint=fingerprint("POST", target, body),
        accepted_at=at,
        idempotency_key=idem,
        callback=callback,
    )


def attempt(at: float, status: int | None) -> DeliveryAttempt:
    # `number` is the store's to assign; 99 proves it ignores the caller's.
    return DeliveryAttempt(number=99, started_at=at, status=status, latency=0.25)


RESPONSE = StoredResponse(201, [("content-type", "text/plain"), ("x-a", "1")], b"made \x00\xff")


def ok(at: float) -> Finish:
    return Finish(attempt(at, 201), State.SUCCEEDED, response=RESPONSE)


def failed(at: float) -> Finish:
    return Finish(attempt(at, 422), State.FAILED)


def dead(at: float) -> Finish:
    return Finish(attempt(at, 503), State.DEAD)


def retry(at: float, until: float, counts: bool = True) -> Finish:
    status = 503 if counts else None
    return Finish(attempt(at, status), State.QUEUED, next_attempt_at=until, counts=counts)


async def accept(rs: RequestStore, *reqs: AcceptedRequest) -> None:
    assert await rs.accept(list(reqs), TTL) == [None] * len(reqs)


async def claim(
    rs: RequestStore, now: float, owner: str = "w1", limit: int = 10, lease: float = LEASE
) -> list[str]:
    return [r.id for r in await rs.claim(now, limit, owner, now + lease)]


async def state_of(rs: RequestStore, rid: str) -> State:
    got = await rs.get(rid)
    assert got is not None
    return got.state


async def must_get(rs: RequestStore, rid: str) -> AcceptedRequest:
    got = await rs.get(rid)
    assert got is not None, rid
    return got


# --- accept, get, idempotency keys ---------------------------------------------------------


async def test_accept_then_get_round_trip(store: Store) -> None:
    rs = store.requests
    body = bytes(range(256)) + b"\x00tail"
    headers = [
        ("content-type", "application/octet-stream"),
        ("x-tag", "a"),
        ("x-tag", "b"),
        ("forwarded", "for=203.0.113.9;proto=https"),
    ]
    a = make(
        "k1", body=body, headers=list(headers), callback="https://hooks.example.com/d", idem="i1"
    )
    b = make("k2", endpoint_id=None)
    assert await rs.accept([a, b], TTL) == [None, None]

    got = await must_get(rs, a.id)
    assert got == dataclasses.replace(a, state=State.QUEUED, callback_state="pending")
    assert got.headers == headers and got.body == body
    assert (got.attempts, got.history, got.response, got.next_attempt_at) == (0, [], None, T0)
    other = await must_get(rs, b.id)
    assert other.callback_state is None and other.endpoint_id is None
    assert await rs.get("r-missing") is None

    # What the store hands out and what it was handed are copies, not its own records.
    a.headers.append(("x-late", "1"))
    got.headers.append(("x-mine", "1"))
    got.state = State.SUCCEEDED
    again = await must_get(rs, a.id)
    assert again.headers == headers and again.state == State.QUEUED


async def test_duplicate_idempotency_key_returns_the_holder(store: Store) -> None:
    rs = store.requests
    first = make(idem="K", at=T0)
    assert await rs.accept([first], 60.0) == [None]

    dup = make(idem="K", at=T0 + 59)
    assert await rs.accept([dup], 60.0) == [first.id]
    assert await rs.get(dup.id) is None
    assert (await rs.counts())["queued"] == 1
    assert await rs.key("alice", "K", T0 + 59) == KeyRecord(first.fingerprint, first.id, T0 + 60)

    # Keys are scoped to their consumer.
    bobs = make(idem="K", at=T0 + 1, consumer="bob")
    assert await rs.accept([bobs], 60.0) == [None]

    # Two with one key in the same batch: the first holds it.
    x, y = make(idem="B", at=T0 + 2), make(idem="B", at=T0 + 2)
    assert await rs.accept([x, y], 60.0) == [None, x.id]
    assert await rs.get(y.id) is None

    # Once the key expired (at T0 + 60), the same key is accepted again and held anew.
    again = make(idem="K", at=T0 + 60)
    assert await rs.accept([again], 60.0) == [None]
    assert await rs.get(again.id) is not None
    assert await rs.key("alice", "K", T0 + 61) == KeyRecord(again.fingerprint, again.id, T0 + 120)
    assert (await rs.counts())["queued"] == 4


async def test_key_is_returned_only_while_unexpired(store: Store) -> None:
    rs = store.requests
    r = make(idem="K", at=T0)
    assert await rs.accept([r], 60.0) == [None]
    held = KeyRecord(r.fingerprint, r.id, T0 + 60)
    assert await rs.key("alice", "K", T0) == held
    assert await rs.key("alice", "K", T0 + 59.5) == held
    assert await rs.key("alice", "K", T0 + 60) is None
    assert await rs.key("alice", "K", T0 + 600) is None
    assert await rs.key("bob", "K", T0) is None
    assert await rs.key("alice", "other", T0) is None
    plain = make(at=T0)
    await accept(rs, plain)
    assert await rs.key("alice", plain.id, T0) is None


# --- lanes ---------------------------------------------------------------------------------


async def test_lanes_deliver_in_acceptance_order_one_at_a_time(store: Store) -> None:
    rs = store.requests
    a0, b0, a1, b1, a2 = (make(k, at=T0 + i) for i, k in enumerate("ABABA"))
    await accept(rs, a0, b0, a1, b1, a2)
    now = T0 + 10

    assert set(await claim(rs, now, "w1")) == {a0.id, b0.id}
    assert await claim(rs, now, "w2") == []  # both lanes are busy
    for rid in (a0.id, b0.id):
        assert await rs.finish(rid, "w1", ok(now), now)

    # limit: one lane's head now, the other lane's head on the next claim
    first = await claim(rs, now + 1, "w1", limit=1)
    second = await claim(rs, now + 1, "w2", limit=1)
    assert len(first) == 1 and len(second) == 1
    assert set(first + second) == {a1.id, b1.id}
    assert await rs.finish(first[0], "w1", ok(now + 1), now + 1)
    assert await rs.finish(second[0], "w2", ok(now + 1), now + 1)

    assert await claim(rs, now + 2) == [a2.id]
    assert await rs.finish(a2.id, "w1", ok(now + 2), now + 2)
    assert await claim(rs, now + 3) == []
    assert (await rs.counts())["succeeded"] == 5


async def test_a_batch_in_one_lane_keeps_its_order(store: Store) -> None:
    rs = store.requests
    batch = [make("same", at=T0) for _ in range(6)]
    await accept(rs, *batch)
    now, delivered = T0, []
    while got := await claim(rs, now):
        assert len(got) == 1
        delivered += got
        assert await rs.finish(got[0], "w1", ok(now), now)
        now += 1
    assert delivered == [r.id for r in batch]


async def test_retry_holds_back_only_its_own_lane(store: Store) -> None:
    rs = store.requests
    a1, a2, b1, b2 = make("A"), make("A"), make("B"), make("B")
    await accept(rs, a1, a2, b1, b2)
    assert set(await claim(rs, T0)) == {a1.id, b1.id}
    assert await rs.finish(a1.id, "w1", retry(T0, T0 + 100), T0 + 1)
    assert await rs.finish(b1.id, "w1", ok(T0), T0 + 1)

    waiting = await must_get(rs, a1.id)
    assert (waiting.state, waiting.attempts, waiting.next_attempt_at) == (State.QUEUED, 1, T0 + 100)
    assert await claim(rs, T0 + 2) == [b2.id]  # lane B flows; a2 waits behind a1
    assert await rs.finish(b2.id, "w1", ok(T0 + 2), T0 + 2)
    assert await claim(rs, T0 + 99) == []
    assert await claim(rs, T0 + 100) == [a1.id]  # the same request again, not a2
    assert await rs.finish(a1.id, "w1", ok(T0 + 100), T0 + 100)
    assert await claim(rs, T0 + 101) == [a2.id]


async def test_finish_by_another_owner_changes_nothing(store: Store) -> None:
    rs = store.requests
    r, q = make("A"), make("B")
    await accept(rs, r)
    assert await claim(rs, T0, "w1") == [r.id]
    before = await must_get(rs, r.id)

    assert not await rs.finish(r.id, "w2", ok(T0 + 1), T0 + 1)
    assert await rs.get(r.id) == before
    assert await rs.lease_owners() == ["w1"]
    assert await claim(rs, T0 + 1, "w2") == []  # the lane is still leased

    assert await rs.finish(r.id, "w1", ok(T0 + 1), T0 + 1)
    assert not await rs.finish(r.id, "w1", ok(T0 + 2), T0 + 2)  # not in flight any more
    done = await must_get(rs, r.id)
    assert done.state == State.SUCCEEDED and len(done.history) == 1

    await accept(rs, q)  # never claimed: nobody can finish it
    assert not await rs.finish(q.id, "w1", ok(T0 + 3), T0 + 3)
    assert await state_of(rs, q.id) == State.QUEUED
    assert not await rs.finish("r-missing", "w1", ok(T0 + 3), T0 + 3)


# --- leases --------------------------------------------------------------------------------


async def test_an_expired_lease_is_taken_over(store: Store) -> None:
    rs = store.requests
    a1, a2 = make("A"), make("A")
    await accept(rs, a1, a2)
    assert await claim(rs, T0, "w1", lease=10) == [a1.id]
    assert await claim(rs, T0 + 9, "w2") == []

    # w1 crashed: after its lease ran out the same head goes to w2, not the next one.
    taken = await rs.claim(T0 + 11, 10, "w2", T0 + 41)
    assert [r.id for r in taken] == [a1.id] and taken[0].state == State.IN_FLIGHT
    assert await rs.lease_owners() == ["w2"]
    assert not await rs.finish(a1.id, "w1", ok(T0 + 12), T0 + 12)
    assert (await must_get(rs, a1.id)).history == []
    assert await rs.finish(a1.id, "w2", ok(T0 + 12), T0 + 12)
    assert len((await must_get(rs, a1.id)).history) == 1
    assert await claim(rs, T0 + 12, "w2") == [a2.id]


async def test_renew_keeps_a_lease_alive(store: Store) -> None:
    rs = store.requests
    r = make("A")
    await accept(rs, r)
    assert await claim(rs, T0, "w1", lease=10) == [r.id]
    await rs.renew([r.id], "w2", T0 + 1000)  # not w2's lease: no effect
    await rs.renew([r.id, "r-missing"], "w1", T0 + 30)
    assert await claim(rs, T0 + 20, "w2") == []
    assert await rs.finish(r.id, "w1", ok(T0 + 25), T0 + 25)


async def test_renewed_lease_still_runs_out(store: Store) -> None:
    rs = store.requests
    r = make("A")
    await accept(rs, r)
    assert await claim(rs, T0, "w1", lease=10) == [r.id]
    await rs.renew([r.id], "w1", T0 + 30)
    assert await claim(rs, T0 + 31, "w2") == [r.id]


async def test_release_hands_leases_back_unattempted(store: Store) -> None:
    rs = store.requests
    a, b, c = make("A"), make("B"), make("C")
    await accept(rs, a, b)
    assert set(await claim(rs, T0, "w1")) == {a.id, b.id}
    await accept(rs, c)
    assert await claim(rs, T0, "w2") == [c.id]
    assert sorted(await rs.lease_owners()) == ["w1", "w2"]

    assert await rs.release("w1", T0 + 1) == 2
    for rid in (a.id, b.id):
        back = await must_get(rs, rid)
        assert (back.state, back.attempts, back.history) == (State.QUEUED, 0, [])
        assert back.updated_at == T0 + 1
    assert await rs.lease_owners() == ["w2"]
    assert not await rs.finish(a.id, "w1", ok(T0 + 1), T0 + 1)

    # Claimable at once, long before the old leases would have run out.
    assert set(await claim(rs, T0 + 1, "w3")) == {a.id, b.id}
    assert await rs.release("nobody", T0 + 1) == 0
    assert await state_of(rs, c.id) == State.IN_FLIGHT


async def test_release_of_some_ids_leaves_the_others_leased(store: Store) -> None:
    rs = store.requests
    a, b, a2 = make("A"), make("B"), make("A", at=T0 + 0.5)
    await accept(rs, a, b, a2)
    assert set(await claim(rs, T0 + 1, "w1")) == {a.id, b.id}
    assert await rs.release("w2", T0 + 1, [a.id]) == 0  # not the holder's
    assert await rs.release("w1", T0 + 1, [a.id, "r-missing"]) == 1
    assert await state_of(rs, a.id) == State.QUEUED
    assert await state_of(rs, b.id) == State.IN_FLIGHT
    # Its lane is free again, with its head first; the other lane stays leased.
    assert await claim(rs, T0 + 1, "w2") == [a.id]
    assert await rs.finish(b.id, "w1", ok(T0 + 2), T0 + 2)
    assert await rs.finish(a.id, "w2", ok(T0 + 2), T0 + 2)
    assert await claim(rs, T0 + 2, "w2") == [a2.id]


async def test_finish_many_records_each_and_tells_which(store: Store) -> None:
    rs = store.requests
    a, b, c, a2 = make("A"), make("B"), make("C"), make("A", at=T0 + 0.5)
    await accept(rs, a, b, c, a2)
    assert set(await claim(rs, T0 + 1, "w1")) == {a.id, b.id, c.id}
    assert await rs.release("w1", T0 + 1, [c.id]) == 1
    done = await rs.finish_many(
        [(a.id, ok(T0 + 1)), (c.id, ok(T0 + 1)), (b.id, retry(T0 + 1, T0 + 50))], "w1", T0 + 2
    )
    assert done == [True, False, True]  # c was handed back: not ours to finish
    assert await state_of(rs, a.id) == State.SUCCEEDED
    assert await state_of(rs, c.id) == State.QUEUED
    assert (await must_get(rs, b.id)).next_attempt_at == T0 + 50
    assert set(await claim(rs, T0 + 2, "w1")) == {a2.id, c.id}  # a's lane moved on


async def test_lease_owners(store: Store) -> None:
    rs = store.requests
    assert await rs.lease_owners() == []
    a, b, c = make("A"), make("B"), make("C")
    await accept(rs, a, b, c)
    assert await claim(rs, T0, "w2", limit=1) != []
    assert len(await claim(rs, T0, "w1", limit=2)) == 2
    assert sorted(await rs.lease_owners()) == ["w1", "w2"]
    mine = [r.id for r in await rs.find(RequestFilter(state=State.IN_FLIGHT))]
    for rid in mine:
        await rs.finish(rid, "w1", ok(T0 + 1), T0 + 1)
    assert await rs.lease_owners() == ["w2"]


# --- cancel and replay ---------------------------------------------------------------------


async def test_cancel_only_queued_requests(store: Store) -> None:
    rs = store.requests
    a1, a2, b1 = make("A"), make("A"), make("B")
    await accept(rs, a1, a2, b1)
    assert set(await claim(rs, T0)) == {a1.id, b1.id}
    assert await rs.finish(b1.id, "w1", ok(T0 + 1), T0 + 1)

    flying = await rs.cancel(a1.id, T0 + 2)
    assert flying is not None and flying.state == State.IN_FLIGHT
    done = await rs.cancel(b1.id, T0 + 2)
    assert done is not None and done.state == State.SUCCEEDED
    assert await rs.cancel("r-missing", T0 + 2) is None

    cancelled = await rs.cancel(a2.id, T0 + 2)
    assert cancelled is not None
    assert (cancelled.state, cancelled.updated_at) == (State.CANCELLED, T0 + 2)
    assert cancelled.body == a2.body
    again = await rs.cancel(a2.id, T0 + 3)
    assert again is not None and (again.state, again.updated_at) == (State.CANCELLED, T0 + 2)

    assert await rs.finish(a1.id, "w1", ok(T0 + 3), T0 + 3)  # in flight: still finishes
    assert await claim(rs, T0 + 4) == []  # a2 is never delivered
    counts = await rs.counts()
    assert (counts["succeeded"], counts["cancelled"], counts["queued"]) == (2, 1, 0)


async def test_a_cancelled_head_does_not_block_its_lane(store: Store) -> None:
    rs = store.requests
    a1, a2, a3 = make("A"), make("A"), make("A")
    await accept(rs, a1, a2, a3)
    await rs.cancel(a1.id, T0)
    assert await claim(rs, T0) == [a2.id]


async def test_a_cancelled_retrying_head_does_not_block_its_lane(store: Store) -> None:
    rs = store.requests
    a1, a2 = make("A"), make("A")
    await accept(rs, a1, a2)
    assert await claim(rs, T0) == [a1.id]
    assert await rs.finish(a1.id, "w1", retry(T0, T0 + 3600), T0 + 1)
    cancelled = await rs.cancel(a1.id, T0 + 2)
    assert cancelled is not None and cancelled.state == State.CANCELLED
    assert await claim(rs, T0 + 3) == [a2.id]  # not an hour later


async def test_a_lane_of_cancelled_requests_leaves_others_alone(store: Store) -> None:
    rs = store.requests
    gone, b = make("A"), make("B")
    await accept(rs, gone, b)
    await rs.cancel(gone.id, T0)
    assert await claim(rs, T0, limit=1) == [b.id]
    assert await rs.lease_owners() == ["w1"]


async def test_replay_requeues_only_dead_requests(store: Store) -> None:
    rs = store.requests
    d, s, f, q, i = make("A"), make("B"), make("C"), make("D"), make("E")
    await accept(rs, d, s, f, i)
    assert len(await claim(rs, T0, lease=1000)) == 4
    assert await rs.finish(d.id, "w1", dead(T0), T0 + 1)
    assert await rs.finish(s.id, "w1", ok(T0), T0 + 1)
    assert await rs.finish(f.id, "w1", failed(T0), T0 + 1)
    await accept(rs, q)
    before = {r.id: await must_get(rs, r.id) for r in (s, f, q, i)}
    assert (await must_get(rs, d.id)).attempts == 1

    assert await rs.replay([d.id, s.id, f.id, q.id, i.id, "r-missing"], T0 + 50) == 1
    back = await must_get(rs, d.id)
    assert (back.state, back.attempts, back.next_attempt_at) == (State.QUEUED, 0, T0 + 50)
    for rid, was in before.items():
        assert await rs.get(rid) == was

    assert await claim(rs, T0 + 49, "w2") == [q.id]  # d is due only from T0 + 50
    assert await claim(rs, T0 + 50, "w2") == [d.id]
    assert await rs.finish(d.id, "w2", ok(T0 + 50), T0 + 51)
    delivered = await must_get(rs, d.id)
    assert delivered.state == State.SUCCEEDED and delivered.attempts == 1
    assert [a.number for a in delivered.history] == [1, 2]
    assert await rs.replay([d.id], T0 + 60) == 0


async def test_a_replayed_request_does_not_jump_an_expired_lease(store: Store) -> None:
    rs = store.requests
    a1, a2 = make("A"), make("A")
    await accept(rs, a1, a2)
    assert await claim(rs, T0) == [a1.id]
    assert await rs.finish(a1.id, "w1", dead(T0), T0)
    assert await claim(rs, T0, "w1", lease=10) == [a2.id]
    assert await rs.replay([a1.id], T0 + 1) == 1
    assert await claim(rs, T0 + 5, "w2") == []  # a2's lease still holds the lane

    # w1's lease ran out: its request is the one claimed again, and a1 still waits, so
    # the lane never has two requests in flight.
    assert await claim(rs, T0 + 11, "w2") == [a2.id]
    assert await state_of(rs, a1.id) == State.QUEUED
    assert await rs.finish(a2.id, "w2", ok(T0 + 12), T0 + 12)
    assert await claim(rs, T0 + 12, "w2") == [a1.id]


async def test_a_replayed_request_is_not_held_back_by_a_later_ones_retry(store: Store) -> None:
    rs = store.requests
    a1, a2 = make("A"), make("A")
    await accept(rs, a1, a2)
    assert await claim(rs, T0) == [a1.id]
    assert await rs.finish(a1.id, "w1", dead(T0), T0)
    assert await claim(rs, T0) == [a2.id]
    assert await rs.replay([a1.id], T0 + 1) == 1
    assert await rs.finish(a2.id, "w1", retry(T0 + 1, T0 + 100), T0 + 2)
    # The lane's head is a1 again (accepted first), due since its replay.
    assert await claim(rs, T0 + 3) == [a1.id]
    assert await rs.finish(a1.id, "w1", ok(T0 + 3), T0 + 4)
    assert await claim(rs, T0 + 5) == []
    assert await claim(rs, T0 + 100) == [a2.id]


# --- reading and housekeeping --------------------------------------------------------------


async def test_counts(store: Store) -> None:
    rs = store.requests
    assert await rs.counts() == {s.value: 0 for s in State}
    reqs = [make(k) for k in "ABCDEFG"]
    await accept(rs, *reqs)
    assert len(await claim(rs, T0, limit=5)) == 5
    a, b, c, d, e, f, g = (r.id for r in reqs)
    claimed = {r.id for r in await rs.find(RequestFilter(state=State.IN_FLIGHT))}
    outcomes = iter([ok(T0), ok(T0), failed(T0), dead(T0)])
    for rid in sorted(claimed)[:4]:
        assert await rs.finish(rid, "w1", next(outcomes), T0 + 1)
    unclaimed = sorted({a, b, c, d, e, f, g} - claimed)
    await rs.cancel(unclaimed[0], T0 + 1)
    assert await rs.counts() == {
        "queued": 1,
        "in_flight": 1,
        "succeeded": 2,
        "failed": 1,
        "dead": 1,
        "cancelled": 1,
    }


async def test_find_filters_pages_and_leaves_out_bodies(store: Store) -> None:
    rs = store.requests
    r1 = make("k1", consumer="alice", endpoint_id="ep_a", at=T0 + 1)
    r2 = make("k2", consumer="bob", endpoint_id="ep_b", at=T0 + 2)
    r3 = make("k3", consumer="alice", endpoint_id="ep_b", at=T0 + 3)
    r4 = make("k4", consumer="alice", endpoint_id="ep_a", at=T0 + 4)
    r5 = make("k5", consumer="bob", endpoint_id="ep_a", at=T0 + 5)
    await accept(rs, r1, r2, r3)
    await accept(rs, r4, r5)
    assert await claim(rs, T0 + 10, limit=1) == [r1.id]
    assert await rs.finish(r1.id, "w1", ok(T0 + 10), T0 + 10)

    def ids(found: list[AcceptedRequest]) -> list[str]:
        return [r.id for r in found]

    everything = await rs.find(RequestFilter())
    assert ids(everything) == [r5.id, r4.id, r3.id, r2.id, r1.id]
    for found in everything:
        assert found.body == b"" and found.history == []
        assert found.response is None or found.response.body == b""
    first = everything[-1]
    assert first.state == State.SUCCEEDED and first.attempts == 1
    assert first.response is not None and first.response.status == 201

    assert ids(await rs.find(RequestFilter(state=State.SUCCEEDED))) == [r1.id]
    assert ids(await rs.find(RequestFilter(state=State.QUEUED))) == [r5.id, r4.id, r3.id, r2.id]
    assert await rs.find(RequestFilter(state=State.DEAD)) == []
    assert ids(await rs.find(RequestFilter(endpoint_id="ep_a"))) == [r5.id, r4.id, r1.id]
    assert ids(await rs.find(RequestFilter(consumer="alice"))) == [r4.id, r3.id, r1.id]
    both = RequestFilter(consumer="alice", endpoint_id="ep_a", state=State.QUEUED)
    assert ids(await rs.find(both)) == [r4.id]
    assert await rs.find(RequestFilter(consumer="carol")) == []
    assert ids(await rs.find(RequestFilter(limit=2))) == [r5.id, r4.id]
    assert ids(await rs.find(RequestFilter(limit=2, before=r4.id))) == [r3.id, r2.id]
    assert ids(await rs.find(RequestFilter(before=r2.id))) == [r1.id]
    assert await rs.find(RequestFilter(before=r1.id)) == []
    assert await rs.find(RequestFilter(before="r-missing")) == []
    assert await rs.find(RequestFilter(limit=0)) == []
    paged = RequestFilter(consumer="alice", limit=1, before=r4.id)
    assert ids(await rs.find(paged)) == [r3.id]

    # Paging through everything, two at a time, sees each request once, newest first.
    seen: list[str] = []
    cursor: str | None = None
    while page := await rs.find(RequestFilter(limit=2, before=cursor)):
        seen += ids(page)
        cursor = page[-1].id
    assert seen == ids(everything)

    # What find returns is a copy.
    everything[0].headers.append(("x-mine", "1"))
    assert (await must_get(rs, r5.id)).headers == r5.headers


async def test_sweep_forgets_expired_keys_and_old_finished_requests(store: Store) -> None:
    rs = store.requests
    old = [make(k, at=T0) for k in ("o1", "o2", "o3")]
    await accept(rs, *old)
    assert len(await claim(rs, T0)) == 3
    for r, result in zip(old, [ok(T0), failed(T0), dead(T0)], strict=True):
        assert await rs.finish(r.id, "w1", result, T0 + 1)
    gone = make("o4", at=T0)
    await accept(rs, gone)
    await rs.cancel(gone.id, T0 + 1)
    old.append(gone)
    short, long = make("K1", idem="short", at=T0), make("K2", idem="long", at=T0)
    assert await rs.accept([short], 10.0) == [None]
    assert await rs.accept([long], 1000.0) == [None]
    recent = make("n1", at=T0 + 90)
    await accept(rs, recent)
    assert recent.id in await claim(rs, T0 + 90)
    assert await rs.finish(recent.id, "w1", ok(T0 + 95), T0 + 95)
    await rs.release("w1", T0 + 95)

    assert await rs.sweep(T0 + 100, keep_done=50.0) == 3
    for r in old:
        if r.id == old[2].id:  # the dead letter stays, to be replayed
            assert (await must_get(rs, r.id)).state == State.DEAD
        else:
            assert await rs.get(r.id) is None
    for r in (short, long, recent):
        assert await rs.get(r.id) is not None
    # The expired key is gone for good, even asked about as of a time it was valid.
    assert await rs.key("alice", "short", T0) is None
    assert await rs.key("alice", "long", T0) == KeyRecord(long.fingerprint, long.id, T0 + 1000)
    assert await rs.counts() == {
        **{s.value: 0 for s in State},
        "queued": 2,
        "succeeded": 1,
        "dead": 1,
    }
    assert await rs.sweep(T0 + 100, keep_done=50.0) == 0
    assert await rs.sweep(T0 + 146, keep_done=50.0) == 1  # recent, done at T0 + 95


async def test_pending_callbacks_are_done_requests_with_an_unsent_callback(store: Store) -> None:
    rs = store.requests
    hook = "https://hooks.example.com/done"
    first, second, third, waiting, silent = (
        make("A", callback=hook),
        make("B", callback=hook),
        make("C", callback=hook),
        make("D", callback=hook),
        make("E"),
    )
    await accept(rs, first, second, third, silent)
    assert len(await claim(rs, T0)) == 4
    outcomes = (ok(T0), dead(T0), failed(T0), ok(T0))
    for r, result in zip((first, second, third, silent), outcomes, strict=True):
        assert await rs.finish(r.id, "w1", result, T0 + 1)
    await accept(rs, waiting)
    assert await claim(rs, T0 + 1) == [waiting.id]  # in flight: nothing to call back yet

    pending = await rs.pending_callbacks(10)
    assert [r.id for r in pending] == [first.id, second.id, third.id]  # oldest first
    assert pending[0].response == RESPONSE and pending[0].body == first.body
    assert [r.id for r in await rs.pending_callbacks(2)] == [first.id, second.id]

    await rs.set_callback_state(first.id, "delivered")
    await rs.set_callback_state(third.id, "refused")
    await rs.set_callback_state("r-missing", "delivered")
    assert [r.id for r in await rs.pending_callbacks(10)] == [second.id]
    assert (await must_get(rs, first.id)).callback_state == "delivered"
    assert (await must_get(rs, third.id)).callback_state == "refused"


async def test_attempt_history_is_numbered_across_retries_and_replay(store: Store) -> None:
    rs = store.requests
    r = make("A")
    await accept(rs, r)
    now = T0
    steps = [retry(now, now + 1), retry(now, now + 2, counts=False), dead(now)]
    for n, result in enumerate(steps):
        assert await claim(rs, now + n) == [r.id]
        assert await rs.finish(r.id, "w1", result, now + n)
    died = await must_get(rs, r.id)
    assert died.state == State.DEAD and died.attempts == 2
    assert [a.number for a in died.history] == [1, 2, 3]
    assert [a.status for a in died.history] == [503, None, 503]

    assert await rs.replay([r.id], now + 10) == 1
    assert (await must_get(rs, r.id)).attempts == 0
    assert await claim(rs, now + 10) == [r.id]
    assert await rs.finish(r.id, "w1", ok(now + 10), now + 11)
    final = await must_get(rs, r.id)
    assert [a.number for a in final.history] == [1, 2, 3, 4]
    assert final.history[-1] == DeliveryAttempt(4, now + 10, 201, 0.25)
    assert (final.state, final.attempts, final.updated_at) == (State.SUCCEEDED, 1, now + 11)
    assert final.response == RESPONSE


async def test_the_response_kept_is_the_last_attempts(store: Store) -> None:
    rs = store.requests
    r = make("A")
    await accept(rs, r)
    assert await claim(rs, T0) == [r.id]
    down = StoredResponse(503, [("retry-after", "5")], b"down for maintenance")
    gave_up = Finish(attempt(T0, 503), State.DEAD, response=down)
    assert await rs.finish(r.id, "w1", gave_up, T0)
    assert (await must_get(rs, r.id)).response == down
    assert await rs.replay([r.id], T0 + 1) == 1
    assert await claim(rs, T0 + 1) == [r.id]
    empty = StoredResponse(204, [], b"")
    assert await rs.finish(
        r.id, "w1", Finish(attempt(T0 + 1, 204), State.SUCCEEDED, None, empty), T0 + 2
    )
    assert (await must_get(rs, r.id)).response == empty


async def test_an_uncounted_attempt_is_recorded_but_not_counted(store: Store) -> None:
    rs = store.requests
    r = make("A")
    await accept(rs, r)
    assert await claim(rs, T0) == [r.id]
    assert await rs.finish(r.id, "w1", retry(T0, T0 + 5, counts=False), T0)
    got = await must_get(rs, r.id)
    assert (got.attempts, len(got.history), got.next_attempt_at) == (0, 1, T0 + 5)
    assert await claim(rs, T0 + 5) == [r.id]
    assert await rs.finish(r.id, "w1", retry(T0 + 5, T0 + 9), T0 + 5)
    got = await must_get(rs, r.id)
    assert (got.attempts, len(got.history)) == (1, 2)


# --- SQLite only ---------------------------------------------------------------------------


async def test_sqlite_accepted_requests_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    batch = [
        make("A", idem="i1", callback="https://hooks.example.com/x", body=b"\x00\x01"),
        make("A"),
        make("B"),
    ]
    s = await open_store(url)
    try:
        await accept(s.requests, *batch)
        assert sorted(await claim(s.requests, T0, "w1", lease=100)) == [batch[0].id, batch[2].id]
    finally:
        await s.close()

    s = await open_store(url)
    try:
        rs = s.requests
        first = await must_get(rs, batch[0].id)
        expected = dataclasses.replace(batch[0], callback_state="pending")
        assert dataclasses.replace(first, state=State.QUEUED, updated_at=T0) == expected
        assert first.state == State.IN_FLIGHT
        assert await rs.get(batch[1].id) == dataclasses.replace(batch[1], state=State.QUEUED)
        assert await rs.key("alice", "i1", T0) == KeyRecord(
            batch[0].fingerprint, batch[0].id, T0 + TTL
        )
        assert await rs.lease_owners() == ["w1"]
        assert await claim(rs, T0 + 1, "w2") == []  # the leases were kept too
        assert await rs.finish(batch[0].id, "w1", ok(T0 + 2), T0 + 2)
        assert await claim(rs, T0 + 2, "w2") == [batch[1].id]
    finally:
        await s.close()


ODD_HEADERS = [
    ("host", "api.example.com:8443"),
    ("x-empty", ""),
    ("x-colons", "a: b: c"),
    ("x-latin", "caf\xe9 \xff"),
    ("x-spaces", "  padded  "),
    ("x-repeated", "1"),
    ("x-repeated", "2"),
]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        ODD_HEADERS,
        [("x-broken", "line\nbreak"), ("x-after", "kept")],
        [("[not-json", "x"), ("a:b", "c")],
    ],
    ids=["none", "odd values", "a line break", "odd names"],
)
async def test_headers_come_back_as_accepted(store: Store, headers: list[tuple[str, str]]) -> None:
    r = make(headers=headers)
    await accept(store.requests, r)
    assert (await must_get(store.requests, r.id)).headers == headers


async def test_sqlite_reads_headers_stored_as_json(tmp_path: Path) -> None:
    """Rows written before headers were stored one per line keep their headers."""
    url = f"sqlite:///{tmp_path}/queue.db"
    r = make(headers=ODD_HEADERS)
    s = await open_store(url)
    try:
        await accept(s.requests, r)
    finally:
        await s.close()
    with sqlite3.connect(tmp_path / "queue.db") as db:
        db.execute("UPDATE requests SET headers = ? WHERE id = ?", (json.dumps(ODD_HEADERS), r.id))
    s = await open_store(url)
    try:
        assert (await must_get(s.requests, r.id)).headers == ODD_HEADERS
    finally:
        await s.close()


async def test_sqlite_a_batch_is_one_transaction(tmp_path: Path) -> None:
    s = await open_store(f"sqlite:///{tmp_path}/queue.db")
    try:
        rs = s.requests
        batch = [make(f"k{i % 7}", at=T0, idem=f"i{i}") for i in range(1000)]
        await accept(rs, *batch)
        assert (await rs.counts())["queued"] == 1000
        assert len(await rs.find(RequestFilter(limit=5000))) == 1000

        # One bad item at the end of the next batch undoes the 999 before it.
        doomed = [make("z", at=T0, idem=f"d{i}") for i in range(999)]
        clash = dataclasses.replace(make("z", at=T0), id=batch[0].id)
        with pytest.raises(sqlite3.IntegrityError):
            await rs.accept([*doomed, clash], TTL)
        assert (await rs.counts())["queued"] == 1000
        assert await rs.get(doomed[0].id) is None
        assert await rs.key("alice", "d0", T0) is None
        assert len(await claim(rs, T0, limit=100)) == 7
    finally:
        await s.close()


# --- random operations against a model -----------------------------------------------------

KEYS = ("A", "B")
OWNERS = ("w1", "w2")
# Repeated entries weigh the draw towards the operations that move requests along.
OPS = (
    *("accept", "tick", "claim", "finish") * 3,
    *("cancel", "replay") * 2,
    "renew",
    "release",
)


@dataclasses.dataclass
class Model:
    """What the store should hold, as far as the invariants need it."""

    now: float = T0
    order: list[str] = dataclasses.field(default_factory=list)  # ids in acceptance order
    key_of: dict[str, str] = dataclasses.field(default_factory=dict)
    state: dict[str, State] = dataclasses.field(default_factory=dict)
    due: dict[str, float] = dataclasses.field(default_factory=dict)
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)
    holder: dict[str, str] = dataclasses.field(default_factory=dict)  # in flight: owner
    lease: dict[str, float] = dataclasses.field(default_factory=dict)
    idem: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    first_claims: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    replayed: set[str] = dataclasses.field(default_factory=set)

    def head(self, key: str) -> str | None:
        """The request a claim of this lane must return: the one in flight, if any, else
        the earliest queued one."""
        pending = [r for r in self.order if self.key_of[r] == key and self.state[r] in PENDING]
        flying = [r for r in pending if self.state[r] == State.IN_FLIGHT]
        return flying[0] if flying else pending[0] if pending else None

    def claimable(self) -> dict[str, str]:
        out = {}
        for key in KEYS:
            head = self.head(key)
            if head is None:
                continue
            if self.state[head] == State.IN_FLIGHT:
                if self.lease[head] < self.now:
                    out[key] = head
            elif self.due[head] <= self.now:
                out[key] = head
        return out


async def _check(rs: RequestStore, m: Model, seen: dict[str, State]) -> None:
    everything = await rs.find(RequestFilter(limit=100_000))
    ids = [r.id for r in everything]
    assert len(ids) == len(set(ids)) and set(ids) == set(m.order)
    # Every request is in exactly one state, and it is the one the model expects.
    by_state = {
        s: {r.id for r in await rs.find(RequestFilter(state=s, limit=100_000))} for s in State
    }
    for r in everything:
        assert [s for s, members in by_state.items() if r.id in members] == [r.state]
        assert (r.state, r.attempts) == (m.state[r.id], m.attempts[r.id]), r.id
        if seen.get(r.id) in FINAL:
            assert r.state == seen[r.id], f"{r.id} left final state {seen[r.id]}"
        seen[r.id] = r.state
    assert await rs.counts() == {s.value: len(by_state[s]) for s in State}
    # At most one request per lane in flight.
    flying = [m.key_of[r.id] for r in everything if r.state == State.IN_FLIGHT]
    assert len(flying) == len(set(flying))
    # Per lane, requests first reached the origin in acceptance order.
    for key, claimed in m.first_claims.items():
        assert claimed == sorted(claimed, key=m.order.index), key


async def _run(rs: RequestStore, data: st.DataObject) -> None:
    m = Model()
    seen: dict[str, State] = {}
    for _ in range(data.draw(st.integers(5, 60), label="steps")):
        op = data.draw(st.sampled_from(OPS), label="op")
        if op == "accept":
            batch = []
            expected: list[str | None] = []
            for _ in range(data.draw(st.integers(1, 3), label="size")):
                key = data.draw(st.sampled_from(KEYS), label="key")
                idem = data.draw(st.sampled_from([None, None, "i1", "i2"]), label="idem")
                r = make(key, at=m.now, idem=idem)
                batch.append(r)
                held = m.idem.get(idem) if idem else None
                if held is not None and held[1] > m.now:
                    expected.append(held[0])
                    continue
                if idem:
                    m.idem[idem] = (r.id, m.now + 20)
                expected.append(None)
                m.order.append(r.id)
                m.key_of[r.id], m.state[r.id], m.due[r.id] = key, State.QUEUED, m.now
                m.attempts[r.id] = 0
            assert await rs.accept(batch, 20.0) == expected
        elif op == "tick":
            m.now += data.draw(st.sampled_from([0.5, 1.0, 5.0, 15.0, 40.0]), label="dt")
        elif op == "claim":
            owner = data.draw(st.sampled_from(OWNERS), label="owner")
            limit = data.draw(st.integers(1, 3), label="limit")
            length = data.draw(st.sampled_from([5.0, 20.0]), label="lease")
            heads = m.claimable()
            got = await rs.claim(m.now, limit, owner, m.now + length)
            assert len(got) == min(limit, len(heads)), (heads, [r.id for r in got])
            for r in got:
                assert heads.get(r.ordering_key) == r.id and r.state == State.IN_FLIGHT
                m.state[r.id], m.holder[r.id], m.lease[r.id] = (
                    State.IN_FLIGHT,
                    owner,
                    m.now + length,
                )
                firsts = m.first_claims.setdefault(r.ordering_key, [])
                if r.id not in firsts and r.id not in m.replayed:
                    firsts.append(r.id)
        elif op == "finish":
            if not m.order:
                continue
            flying = [r for r in m.order if m.state[r] == State.IN_FLIGHT]
            rid = data.draw(st.sampled_from(flying or m.order), label="id")
            holder = m.holder.get(rid, "w1")
            wrong = "w2" if holder == "w1" else "w1"
            owner = data.draw(st.sampled_from([holder, holder, holder, wrong]), label="owner")
            kind = data.draw(st.sampled_from(["ok", "fail", "dead", "retry", "uncounted"]))
            delay = data.draw(st.sampled_from([0.0, 3.0, 30.0]), label="delay")
            result = {
                "ok": ok(m.now),
                "fail": failed(m.now),
                "dead": dead(m.now),
                "retry": retry(m.now, m.now + delay),
                "uncounted": retry(m.now, m.now + delay, counts=False),
            }[kind]
            holds = m.state[rid] == State.IN_FLIGHT and m.holder.get(rid) == owner
            assert await rs.finish(rid, owner, result, m.now) is holds
            if holds:
                m.state[rid] = result.state
                m.due[rid] = m.now + delay
                m.attempts[rid] += result.counts
                del m.holder[rid]
        elif op == "renew":
            flying = [r for r in m.order if m.state[r] == State.IN_FLIGHT]
            if not flying:
                continue
            rid = data.draw(st.sampled_from(flying), label="id")
            owner = data.draw(st.sampled_from(OWNERS), label="owner")
            await rs.renew([rid], owner, m.now + 20)
            if m.holder[rid] == owner:
                m.lease[rid] = m.now + 20
        elif op == "release":
            owner = data.draw(st.sampled_from(OWNERS), label="owner")
            mine = [r for r in m.order if m.state[r] == State.IN_FLIGHT and m.holder[r] == owner]
            if m.order and data.draw(st.booleans(), label="only some"):  # claimed ahead, unsent
                some = data.draw(st.lists(st.sampled_from(m.order), max_size=3, unique=True))
                mine = [r for r in mine if r in some]
                assert await rs.release(owner, m.now, some) == len(mine)
            else:
                assert await rs.release(owner, m.now) == len(mine)
            for rid in mine:
                m.state[rid] = State.QUEUED
                del m.holder[rid]
        elif op == "cancel":
            if not m.order:
                continue
            queued = [r for r in m.order if m.state[r] == State.QUEUED]
            rid = data.draw(st.sampled_from(queued + m.order[-2:]), label="id")
            after = await rs.cancel(rid, m.now)
            if m.state[rid] == State.QUEUED:
                m.state[rid] = State.CANCELLED
            assert after is not None and after.state == m.state[rid]
        elif op == "replay":
            if not m.order:
                continue
            dead_now = [r for r in m.order if m.state[r] == State.DEAD]
            pick = st.sampled_from(dead_now + m.order[-2:])
            ids = data.draw(st.lists(pick, min_size=1, max_size=3), label="ids")
            dead_ones = {r for r in ids if m.state[r] == State.DEAD}
            assert await rs.replay(ids, m.now) == len(dead_ones)
            for rid in dead_ones:
                m.state[rid], m.due[rid], m.attempts[rid] = State.QUEUED, m.now, 0
                m.replayed.add(rid)
        await _check(rs, m, seen)


OPS_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@OPS_SETTINGS
@given(data=st.data())
def test_random_operations_keep_the_invariants_in_memory(data: st.DataObject) -> None:
    async def run() -> None:
        s = await open_store("memory://")
        try:
            await _run(s.requests, data)
        finally:
            await s.close()

    asyncio.run(run())


@OPS_SETTINGS
@given(data=st.data())
def test_random_operations_keep_the_invariants_in_sqlite(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    async def run() -> None:
        s = await open_store(f"sqlite:///{tmp_path_factory.mktemp('ops')}/queue.db")
        try:
            await _run(s.requests, data)
        finally:
            await s.close()

    asyncio.run(run())
