"""Endpoints, consumers with their keys, and captured errors on Redis.

Records are JSON values in hashes; each change and its version bump go in one MULTI or
one script, so an instance that sees the version move also sees the change.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from forebay.catalog.endpoint import Endpoint
from forebay.store.consumers import ApiKey, Consumer
from forebay.store.errors_log import CapturedError


class RedisEndpointStore:
    """`ep` hash: id -> record; `ep:ver`: the catalog version other instances poll."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._r = client
        self._h, self._ver = f"{prefix}ep", f"{prefix}ep:ver"
        self._delete = client.register_script(
            "if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then "
            "redis.call('INCR', KEYS[2]) return 1 end return 0"
        )

    async def list(self) -> list[Endpoint]:
        return [Endpoint.model_validate_json(v) for v in (await self._r.hgetall(self._h)).values()]

    async def get(self, endpoint_id: str) -> Endpoint | None:
        raw = await self._r.hget(self._h, endpoint_id)
        return Endpoint.model_validate_json(raw) if raw is not None else None

    async def save(self, endpoints: Sequence[Endpoint]) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            if endpoints:
                pipe.hset(
                    self._h, mapping={e.id: e.model_dump_json(by_alias=True) for e in endpoints}
                )
            pipe.incr(self._ver)
            await pipe.execute()

    async def delete(self, endpoint_id: str) -> bool:
        return bool(await self._delete(keys=[self._h, self._ver], args=[endpoint_id]))

    async def version(self) -> int:
        return int(await self._r.get(self._ver) or 0)


# KEYS: consumers, keys, revoked, version; ARGV: prefix, name. The consumer, its keys (by
# the `ck:{name}` set) and a version bump, or nothing when there is no such consumer.
_DELETE_CONSUMER = """
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
local set = ARGV[1] .. 'ck:' .. ARGV[2]
for _, id in ipairs(redis.call('SMEMBERS', set)) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
redis.call('DEL', set)
redis.call('INCR', KEYS[4])
return 1
"""

# KEYS: keys, revoked, version; ARGV: prefix, then per key: id, consumer, record, revoked_at
# or ''. A key moved to another consumer leaves the old one's set.
_ADD_KEYS = """
for b = 2, #ARGV, 4 do
  local id, consumer = ARGV[b], ARGV[b + 1]
  local old = redis.call('HGET', ARGV[1] .. 'kc', id)
  if old then redis.call('SREM', ARGV[1] .. 'ck:' .. old, id) end
  redis.call('HSET', KEYS[1], id, ARGV[b + 2])
  redis.call('HSET', ARGV[1] .. 'kc', id, consumer)
  redis.call('SADD', ARGV[1] .. 'ck:' .. consumer, id)
  if ARGV[b + 3] == '' then redis.call('HDEL', KEYS[2], id)
  else redis.call('HSET', KEYS[2], id, ARGV[b + 3]) end
end
redis.call('INCR', KEYS[3])
return 0
"""

# KEYS: keys, revoked, version; ARGV: id, now. Revocation is its own field (`kr` hash),
# so it is set without decoding the record in Lua (cjson would round the times).
_REVOKE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1
then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
"""

# KEYS: keys, revoked, version; ARGV: prefix, ids.
_DELETE_KEYS = """
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HDEL', KEYS[1], id) == 1 then
    n = n + 1
    local owner = redis.call('HGET', ARGV[1] .. 'kc', id)
    if owner then redis.call('SREM', ARGV[1] .. 'ck:' .. owner, id) end
    redis.call('HDEL', ARGV[1] .. 'kc', id)
    redis.call('HDEL', KEYS[2], id)
  end
end
if n > 0 then redis.call('INCR', KEYS[3]) end
return n
"""


class RedisConsumerStore:
    """`cs` hash: name -> consumer; `k` hash: key id -> record; `kr` hash: key id ->
    revoked_at; `kc` hash: key id -> consumer, `ck:{name}` set: a consumer's key ids;
    `cs:ver`: the version."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._r, self._p = client, prefix
        self._cs, self._k, self._kr, self._ver = (
            f"{prefix}{n}" for n in ("cs", "k", "kr", "cs:ver")
        )
        self._delete = client.register_script(_DELETE_CONSUMER)
        self._add = client.register_script(_ADD_KEYS)
        self._revoke = client.register_script(_REVOKE)
        self._delete_keys = client.register_script(_DELETE_KEYS)

    async def list(self) -> list[Consumer]:
        rows = (await self._r.hgetall(self._cs)).values()
        return sorted((Consumer.model_validate_json(v) for v in rows), key=lambda c: c.name)

    async def get(self, name: str) -> Consumer | None:
        raw = await self._r.hget(self._cs, name)
        return Consumer.model_validate_json(raw) if raw is not None else None

    async def save(self, consumer: Consumer) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(self._cs, consumer.name, consumer.model_dump_json())
            pipe.incr(self._ver)
            await pipe.execute()

    async def delete(self, name: str) -> bool:
        keys = [self._cs, self._k, self._kr, self._ver]
        return bool(await self._delete(keys=keys, args=[self._p, name]))

    def _key(self, raw: bytes, revoked: bytes | None) -> ApiKey:
        key = ApiKey.model_validate_json(raw)
        key.revoked_at = float(revoked) if revoked is not None else None
        return key

    async def keys(self, consumer: str | None = None) -> builtins.list[ApiKey]:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._k)
            pipe.hgetall(self._kr)
            records, revoked = await pipe.execute()
        rows = [self._key(v, revoked.get(k)) for k, v in records.items()]
        rows = [k for k in rows if consumer is None or k.consumer == consumer]
        return sorted(rows, key=lambda k: (k.created_at, k.id))

    async def get_key(self, key_id: str) -> ApiKey | None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hget(self._k, key_id)
            pipe.hget(self._kr, key_id)
            raw, revoked = await pipe.execute()
        return self._key(raw, revoked) if raw is not None else None

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        args: list[Any] = [self._p]
        for k in keys:
            revoked = "" if k.revoked_at is None else repr(k.revoked_at)
            args += [k.id, k.consumer, k.model_dump_json(), revoked]
        await self._add(keys=[self._k, self._kr, self._ver], args=args)

    async def revoke_key(self, key_id: str, now: float) -> bool:
        keys = [self._k, self._kr, self._ver]
        return bool(await self._revoke(keys=keys, args=[key_id, repr(now)]))

    async def delete_keys(self, key_ids: Sequence[str]) -> int:
        if not key_ids:
            return 0
        keys = [self._k, self._kr, self._ver]
        return int(await self._delete_keys(keys=keys, args=[self._p, *key_ids]))

    async def version(self) -> int:
        return int(await self._r.get(self._ver) or 0)


class RedisErrorLog:
    """`e:{endpoint}` list: newest first, trimmed to `keep`; `e:all` set: endpoints with
    errors. Samples for the dashboard, so no script: a push and its trim go in one MULTI."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._r, self._p = client, prefix
        self._all = f"{prefix}e:all"

    async def add(self, errors: Sequence[CapturedError], keep: int) -> None:
        if not errors:
            return
        async with self._r.pipeline(transaction=True) as pipe:
            for e in errors:
                pipe.lpush(f"{self._p}e:{e.endpoint_id}", e.model_dump_json())
                pipe.sadd(self._all, e.endpoint_id)
            for endpoint_id in {e.endpoint_id for e in errors}:
                pipe.ltrim(f"{self._p}e:{endpoint_id}", 0, keep - 1)
            await pipe.execute()

    async def recent(self, endpoint_id: str | None = None, limit: int = 100) -> list[CapturedError]:
        if endpoint_id is not None:
            names = [endpoint_id]
        else:
            names = sorted(m.decode() for m in await self._r.smembers(self._all))
        async with self._r.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.lrange(f"{self._p}e:{name}", 0, limit - 1)
            lists = await pipe.execute()
        rows = [CapturedError.model_validate_json(v) for got in lists for v in got]
        rows.sort(key=lambda e: e.at, reverse=True)  # stable: newest pushed first on ties
        return rows[:limit]

    async def clear(self, endpoint_id: str | None = None) -> int:
        names = (
            [endpoint_id]
            if endpoint_id is not None
            else [m.decode() for m in await self._r.smembers(self._all)]
        )
        if not names:
            return 0
        async with self._r.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.llen(f"{self._p}e:{name}")
            for name in names:
                pipe.delete(f"{self._p}e:{name}")
            pipe.srem(self._all, *names)
            got = await pipe.execute()
        return sum(int(n) for n in got[: len(names)])
