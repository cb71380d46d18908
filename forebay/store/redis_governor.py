"""The governors' shared limit (forebay/policy/shared_limit.py) in Redis, for gateway
instances on several machines. One script applies `sync` atomically, with Redis's clock,
so instances whose clocks drift still agree on windows and expiries.

Keys, after the store's prefix: `gov` (hash: limit, changed_at, direction, hold_until)
and `gov:members` (sorted set: instance ids scored by when they expire).
"""

from __future__ import annotations

import math
from typing import Any

from forebay.policy.shared_limit import Share, SharingRules, measure_in
from forebay.store.redis_conn import raise_store_error

# ARGV: prefix, member, ratio, hold_for, initial, window, member_ttl, min, max.
# Returns limit, members, rank (in id order), hold_for, Redis's time.
SYNC = """
local P, member = ARGV[1], ARGV[2]
local ratio, hold_for, initial = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local lo, hi = tonumber(ARGV[8]), tonumber(ARGV[9])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local g, m = P .. 'gov', P .. 'gov:members'
redis.call('ZREMRANGEBYSCORE', m, '-inf', now)
local horizon = string.format('%.17g', now + ttl)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', m, '(' .. horizon, '+inf')) do
  redis.call('ZADD', m, horizon, id)  -- the clock stepped back: held to the horizon
end
local limit, changed_at, direction, hold_until
if redis.call('ZCARD', m) == 0 then
  limit, changed_at, direction, hold_until = math.min(hi, math.max(lo, initial)), 0, 0, 0
  ratio = 1  -- the caller's limit now already holds its latest change
else
  local rec = redis.call('HMGET', g, 'limit', 'changed_at', 'direction', 'hold_until')
  limit = tonumber(rec[1]) or math.min(hi, math.max(lo, initial))
  changed_at = tonumber(rec[2]) or 0
  direction = tonumber(rec[3]) or 0
  hold_until = tonumber(rec[4]) or 0
end
redis.call('ZADD', m, now + ttl, member)
if hold_for > 0 then hold_until = math.max(hold_until, now + hold_for) end
if ratio > 0 and math.abs(ratio - 1) >= 1e-9 then
  local dir = -1
  if ratio > 1 then dir = 1 end
  local since = now - changed_at
  if since < 0 then since = math.huge end
  if since >= window or (dir < 0 and direction > 0) then
    limit = math.min(hi, math.max(lo, limit * ratio))
    changed_at, direction = now, dir
  end
end
redis.call('HSET', g, 'limit', string.format('%.17g', limit),
  'changed_at', string.format('%.17g', changed_at), 'direction', direction,
  'hold_until', string.format('%.17g', hold_until))
local ids = redis.call('ZRANGE', m, 0, -1)
table.sort(ids)
local rank = 0
for i, id in ipairs(ids) do
  if id == member then rank = i - 1 end
end
return {string.format('%.17g', limit), #ids, rank,
  string.format('%.17g', math.max(0, hold_until - now)), string.format('%.17g', now)}
"""


class RedisGovernorStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._r = client
        self._p = prefix
        self._sync = client.register_script(SYNC)

    async def sync(
        self, member: str, ratio: float, hold_for: float, initial: float, rules: SharingRules
    ) -> Share:
        if not math.isfinite(ratio):
            ratio = 1.0
        args = [self._p, member, repr(ratio), repr(max(0.0, hold_for)), repr(initial)]
        args += [repr(rules.window), repr(rules.member_ttl)]
        args += [repr(rules.min_limit), repr(rules.max_limit)]
        try:
            limit, members, rank, hold, now = await self._sync(keys=[], args=args)
        except Exception as e:
            raise_store_error(e)
            raise
        due = measure_in(float(now), rules.remeasure_every)
        return Share(float(limit), int(members), int(rank), float(hold), due)

    async def leave(self, member: str) -> None:
        await self._r.zrem(self._p + "gov:members", member)
