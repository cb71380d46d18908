"""The request queue on Redis, with the lane semantics of the SQLite and memory stores.

Every change is one Lua script (`redis_scripts.py`); reads are plain commands, several
at once in a MULTI so a record and its attempts are read as of one moment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from forebay.dispatch.model import (
    AcceptedRequest,
    DeliveryAttempt,
    Finish,
    RequestFilter,
    StoredResponse,
)
from forebay.policy.idempotency import KeyRecord
from forebay.policy.request_states import State
from forebay.store import redis_scripts as lua
from forebay.store.redis_conn import raise_store_error

# What `find` reads of a record: everything but the bodies.
BRIEF = (b"meta", b"state", b"upd", b"att", b"next", b"cb", b"rs", b"rh")
SWEEP_BATCH = 500
FIND_PAGE = 200


def _meta(r: AcceptedRequest) -> str:
    """The fields that never change after acceptance, as one JSON value."""
    return json.dumps(
        {
            "consumer": r.consumer,
            "endpoint_id": r.endpoint_id,
            "endpoint": r.endpoint,
            "method": r.method,
            "target": r.target,
            "headers": r.headers,
            "ordering_key": r.ordering_key,
            "fingerprint": r.fingerprint,
            "idempotency_key": r.idempotency_key,
            "callback": r.callback,
            "accepted_at": r.accepted_at,
        }
    )


def _text(v: bytes | None) -> str | None:
    return v.decode() if v is not None else None


def to_request(
    rid: str, f: dict[bytes, bytes], attempts: Sequence[bytes] = (), body: bool = True
) -> AcceptedRequest:
    m = json.loads(f[b"meta"])
    response = None
    if f.get(b"rs") is not None:
        response = StoredResponse(
            int(f[b"rs"]),
            [(k, v) for k, v in json.loads(f[b"rh"])],
            f.get(b"rb", b"") if body else b"",
        )
    history = []
    for n, raw in enumerate(attempts, 1):
        started_at, status, latency, error = json.loads(raw)
        history.append(DeliveryAttempt(n, started_at, status, latency, error))
    return AcceptedRequest(
        id=rid,
        consumer=m["consumer"],
        endpoint_id=m["endpoint_id"],
        endpoint=m["endpoint"],
        method=m["method"],
        target=m["target"],
        headers=[(k, v) for k, v in m["headers"]],
        body=f.get(b"body", b"") if body else b"",
        ordering_key=m["ordering_key"],
        fingerprint=m["fingerprint"],
        accepted_at=m["accepted_at"],
        idempotency_key=m["idempotency_key"],
        callback=m["callback"],
        state=State(f[b"state"].decode()),
        attempts=int(f[b"att"]),
        next_attempt_at=float(f[b"next"]),
        updated_at=float(f[b"upd"]),
        response=response,
        history=history,
        callback_state=_text(f.get(b"cb")),
    )


class RedisRequestStore:
    def __init__(self, client: Any, prefix: str, max_size: int | None) -> None:
        self._r = client
        self._p = prefix
        self._max = max_size
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in (
                "ACCEPT",
                "CLAIM",
                "RENEW",
                "FINISH",
                "RELEASE",
                "CANCEL",
                "REPLAY",
                "SWEEP",
                "SET_CALLBACK",
            )
        }

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](keys=[], args=[self._p, *args])
        except Exception as e:
            raise_store_error(e)
            raise

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        args: list[Any] = ["" if self._max is None else str(self._max)]
        for r in batch:
            meta = _meta(r)
            args += [
                r.id,
                r.consumer,
                r.idempotency_key or "",
                r.fingerprint,
                repr(r.accepted_at + key_ttl),
                repr(r.accepted_at),
                r.ordering_key,
                meta,
                r.body,
                "pending" if r.callback else "",
                len(r.body) + len(meta),
            ]
        out = await self._run("ACCEPT", *args)
        return [v.decode() or None for v in out]

    def _idem(self, consumer: str, key: str) -> str:
        return f"{self._p}i:{key}\n{consumer}"

    async def key(self, consumer: str, key: str, now: float) -> KeyRecord | None:
        fp, rid, exp = await self._r.hmget(self._idem(consumer, key), "fp", "id", "exp")
        if rid is None or float(exp) <= now:
            return None
        return KeyRecord(fp.decode(), rid.decode(), float(exp))

    async def _get_many(self, ids: Sequence[str]) -> list[AcceptedRequest]:
        async with self._r.pipeline(transaction=True) as pipe:
            for rid in ids:
                pipe.hgetall(f"{self._p}r:{rid}")
                pipe.lrange(f"{self._p}a:{rid}", 0, -1)
            got = await pipe.execute()
        return [
            to_request(rid, f, attempts)
            for rid, f, attempts in zip(ids, got[::2], got[1::2], strict=True)
            if f
        ]

    async def get(self, request_id: str) -> AcceptedRequest | None:
        found = await self._get_many([request_id])
        return found[0] if found else None

    async def find(self, where: RequestFilter) -> list[AcceptedRequest]:
        top: str = "+inf"
        if where.before is not None:
            seq = await self._r.zscore(f"{self._p}all", where.before)
            if seq is None:
                return []  # as SQLite: nothing is older than an unknown cursor
            top = f"({int(seq)}"
        index = f"{self._p}s:{where.state}" if where.state is not None else f"{self._p}all"
        out: list[AcceptedRequest] = []
        while len(out) < where.limit:
            ids = await self._r.zrevrangebyscore(
                index, top, "-inf", start=0, num=FIND_PAGE, withscores=True
            )
            if not ids:
                break
            top = f"({int(ids[-1][1])}"
            async with self._r.pipeline(transaction=False) as pipe:
                for rid, _ in ids:
                    pipe.hmget(f"{self._p}r:{rid.decode()}", *BRIEF)
                rows = await pipe.execute()
            for (rid, _), row in zip(ids, rows, strict=True):
                if row[0] is None or len(out) >= where.limit:
                    continue  # swept between the two reads
                r = to_request(rid.decode(), dict(zip(BRIEF, row, strict=True)), body=False)
                if (where.endpoint_id is None or r.endpoint_id == where.endpoint_id) and (
                    where.consumer is None or r.consumer == where.consumer
                ):
                    out.append(r)
        return out

    async def claim(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AcceptedRequest]:
        if limit <= 0:
            return []
        ids = await self._run("CLAIM", repr(now), limit, owner, repr(lease_until))
        return await self._get_many([i.decode() for i in ids])

    async def renew(self, ids: Sequence[str], owner: str, lease_until: float) -> None:
        if ids:
            await self._run("RENEW", owner, repr(lease_until), *ids)

    async def finish(self, request_id: str, owner: str, result: Finish, now: float) -> bool:
        return (await self.finish_many([(request_id, result)], owner, now))[0]

    async def finish_many(
        self, results: Sequence[tuple[str, Finish]], owner: str, now: float
    ) -> list[bool]:
        if not results:
            return []
        args: list[Any] = [owner, repr(now)]
        for rid, f in results:
            a, resp = f.attempt, f.response
            args += [
                rid,
                f.state.value,
                int(f.counts),
                repr(f.next_attempt_at or now),
                json.dumps([a.started_at, a.status, a.latency, a.error]),
                "" if resp is None else resp.status,
                "" if resp is None else json.dumps(resp.headers),
                b"" if resp is None else resp.body,
            ]
        return [bool(v) for v in await self._run("FINISH", *args)]

    async def release(self, owner: str, now: float, ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        return int(await self._run("RELEASE", owner, repr(now), *(ids or ())))

    async def lease_owners(self) -> list[str]:
        return sorted(o.decode() for o in await self._r.smembers(f"{self._p}owners"))

    async def cancel(self, request_id: str, now: float) -> AcceptedRequest | None:
        await self._run("CANCEL", request_id, repr(now))
        return await self.get(request_id)

    async def replay(self, request_ids: Sequence[str], now: float) -> int:
        if not request_ids:
            return 0
        return int(await self._run("REPLAY", repr(now), *request_ids))

    async def counts(self) -> dict[str, int]:
        async with self._r.pipeline(transaction=True) as pipe:
            for s in State:
                pipe.zcard(f"{self._p}s:{s.value}")
            got = await pipe.execute()
        return {s.value: int(n) for s, n in zip(State, got, strict=True)}

    async def sweep(self, now: float, keep_done: float) -> int:
        gone = 0
        while True:
            n, keys = await self._run("SWEEP", repr(now), repr(now - keep_done), SWEEP_BATCH)
            gone += int(n)
            if n < SWEEP_BATCH and keys < SWEEP_BATCH:
                return gone

    async def set_callback_state(self, request_id: str, state: str) -> None:
        await self._run("SET_CALLBACK", request_id, state)

    async def pending_callbacks(self, limit: int) -> list[AcceptedRequest]:
        if limit <= 0:
            return []
        ids = await self._r.zrange(f"{self._p}cbp", 0, limit - 1)
        return await self._get_many([i.decode() for i in ids])
