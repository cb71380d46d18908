"""The Lua scripts that move the request queue. Redis runs each atomically, so every
multi-key change (a request, its lane, the state indexes, a lease) happens all or none,
and concurrent gateways never interleave between a read and a write.

Keys, after the store's prefix (docs/redis.md has the reasoning):
  r:{id}     hash: the request (seq, meta, body, state, upd, att, next, owner, key, cb,
             rs/rh/rb the stored response, size)
  a:{id}     list: its attempts, oldest first; an attempt's number is its position
  l:{key}    sorted set: the lane's pending (queued or in-flight) ids, scored by seq
  lm:{key}   hash: the lane's lease: owner, fly (the id in flight); absent when free
  ready      sorted set: free lanes with pending work, scored by when their head is due
  leased     sorted set: leased lanes, scored by when the lease runs out
  own:{o}    set: lanes owner o holds;  owners: set of owners holding any
  all, s:{state}   sorted sets of ids by seq, for listing and counts
  done       sorted set: ids in a final state by when they got there, for the sweep
  cbp        sorted set: done requests with a callback still to send, by seq
  i:{key}\\n{consumer}  hash: an idempotency key (fp, id, exp);  iexp: those by expiry
  seq, bytes counters: acceptance order, and the stored size against max_size
"""

from __future__ import annotations

from forebay.store.redis_conn import LUA_PRELUDE

ACCEPT_FIELDS = 11

# ARGV: P, max_size or '', then per request: id, consumer, idempotency key or '',
# fingerprint, key expiry, accepted_at, ordering key, meta, body, callback state or '',
# size. Returns, per request, '' when stored or the id holding its idempotency key.
ACCEPT = (
    LUA_PRELUDE
    + """
local n = (#ARGV - 2) / 11
local total = 0
for i = 0, n - 1 do
  local b = 3 + i * 11
  if redis.call('EXISTS', P .. 'r:' .. ARGV[b]) == 1 then
    return redis.error_reply('DUPLICATE ' .. ARGV[b])
  end
  total = total + tonumber(ARGV[b + 10])
end
local max = tonumber(ARGV[2])
if max and (tonumber(redis.call('GET', P .. 'bytes') or '0') + total) > max then
  return redis.error_reply('FULL max_size reached')
end
local out = {}
for i = 0, n - 1 do
  local b = 3 + i * 11
  local id, consumer, idem, fp, exp, at = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3],
    ARGV[b + 4], ARGV[b + 5]
  local key = ARGV[b + 6]
  local held = nil
  if idem ~= '' then
    local ik = P .. 'i:' .. idem .. '\\n' .. consumer
    local rec = redis.call('HMGET', ik, 'id', 'exp')
    if rec[1] and tonumber(rec[2]) > tonumber(at) then
      held = rec[1]
    else
      redis.call('HSET', ik, 'fp', fp, 'id', id, 'exp', exp)
      redis.call('ZADD', P .. 'iexp', exp, ik)
    end
  end
  if held then
    out[#out + 1] = held
  else
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', P .. 'r:' .. id, 'seq', seq, 'meta', ARGV[b + 7], 'body', ARGV[b + 8],
      'state', 'queued', 'upd', at, 'att', 0, 'next', at, 'key', key, 'size', ARGV[b + 10])
    if ARGV[b + 9] ~= '' then redis.call('HSET', P .. 'r:' .. id, 'cb', ARGV[b + 9]) end
    redis.call('INCRBY', P .. 'bytes', ARGV[b + 10])
    redis.call('ZADD', P .. 'all', seq, id)
    redis.call('ZADD', P .. 's:queued', seq, id)
    redis.call('ZADD', P .. 'l:' .. key, seq, id)
    if redis.call('EXISTS', P .. 'lm:' .. key) == 0 then
      redis.call('ZADD', P .. 'ready', 'NX', at, key)
    end
    out[#out + 1] = ''
  end
end
return out
"""
)

# ARGV: P, now, limit, owner, lease_until. Returns the claimed ids. Lanes whose lease ran
# out come first (their request was already under way), then free lanes by due time.
CLAIM = (
    LUA_PRELUDE
    + """
local now, limit, owner, lease_until = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local claimed = {}
local function take(key, was_leased)
  local head = nil
  if was_leased then head = redis.call('HGET', P .. 'lm:' .. key, 'fly') end
  head = head or lane_head(key)
  if not head then
    lane_free(key)
    redis.call('ZREM', P .. 'ready', key)
    return
  end
  local r = P .. 'r:' .. head
  local f = redis.call('HMGET', r, 'state', 'next', 'seq')
  if f[1] == 'queued' and tonumber(f[2]) > tonumber(now) then
    lane_free(key)
    redis.call('ZADD', P .. 'ready', f[2], key)  -- its head waits for a retry: only it waits
    return
  end
  if f[1] == 'queued' then move(head, 'queued', 'in_flight', f[3]) end
  lane_free(key)  -- an expired lease's owner loses it here
  redis.call('ZREM', P .. 'ready', key)
  redis.call('HSET', r, 'owner', owner, 'upd', now)
  redis.call('HSET', P .. 'lm:' .. key, 'owner', owner, 'fly', head)
  redis.call('ZADD', P .. 'leased', lease_until, key)
  redis.call('SADD', P .. 'own:' .. owner, key)
  redis.call('SADD', P .. 'owners', owner)
  claimed[#claimed + 1] = head
end
-- Each pass takes a lane out of the range it was read from (claimed with a lease in the
-- future, or rescored to its head's due time, or dropped), so the passes end; the guard
-- only bounds a caller passing a lease that is already over.
for _, source in ipairs({'leased', 'ready'}) do
  local guard = 0
  while #claimed < limit and guard < 64 do
    guard = guard + 1
    local hi = now
    if source == 'leased' then hi = '(' .. now end
    local keys = redis.call('ZRANGEBYSCORE', P .. source, '-inf', hi, 'LIMIT', 0,
      limit - #claimed)
    if #keys == 0 then break end
    for _, key in ipairs(keys) do
      if #claimed < limit then take(key, source == 'leased') end
    end
  end
end
return claimed
"""
)

# ARGV: P, owner, lease_until, ids...
RENEW = (
    LUA_PRELUDE
    + """
local owner, lease_until = ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local f = redis.call('HMGET', P .. 'r:' .. ARGV[i], 'state', 'owner', 'key')
  if f[1] == 'in_flight' and f[2] == owner
      and redis.call('HGET', P .. 'lm:' .. f[3], 'owner') == owner then
    redis.call('ZADD', P .. 'leased', 'XX', lease_until, f[3])
  end
end
return 0
"""
)

FINISH_FIELDS = 8

# ARGV: P, owner, now, then per result: id, state, counts (0/1), next_at, attempt JSON,
# response status or '', response headers JSON, response body. Returns 1/0 per result.
FINISH = (
    LUA_PRELUDE
    + """
local owner, now = ARGV[2], ARGV[3]
local out = {}
for b = 4, #ARGV, 8 do
  local id, state, counts, nx = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3]
  local r = P .. 'r:' .. id
  local f = redis.call('HMGET', r, 'state', 'owner', 'key', 'seq', 'att', 'cb', 'rb', 'size')
  if f[1] ~= 'in_flight' or f[2] ~= owner then
    out[#out + 1] = 0
  else
    local key, seq = f[3], f[4]
    redis.call('RPUSH', P .. 'a:' .. id, ARGV[b + 4])
    move(id, 'in_flight', state, seq)
    redis.call('HSET', r, 'att', tonumber(f[5]) + counts, 'next', nx, 'upd', now)
    redis.call('HDEL', r, 'owner')
    local old_body = string.len(f[7] or '')
    local new_body = 0
    if ARGV[b + 5] ~= '' then
      redis.call('HSET', r, 'rs', ARGV[b + 5], 'rh', ARGV[b + 6], 'rb', ARGV[b + 7])
      new_body = string.len(ARGV[b + 7])
    else
      redis.call('HDEL', r, 'rs', 'rh', 'rb')
    end
    redis.call('HSET', r, 'size', tonumber(f[8]) - old_body + new_body)
    redis.call('INCRBY', P .. 'bytes', new_body - old_body)
    if state ~= 'queued' then redis.call('ZREM', P .. 'l:' .. key, id) end
    if FINAL[state] then redis.call('ZADD', P .. 'done', now, id) end
    if DONE[state] and f[6] == 'pending' then redis.call('ZADD', P .. 'cbp', seq, id) end
    advance(key, now)
    out[#out + 1] = 1
  end
end
return out
"""
)

# ARGV: P, owner, now, then the ids to release, or none for every lease of the owner.
RELEASE = (
    LUA_PRELUDE
    + """
local owner, now = ARGV[2], ARGV[3]
local n = 0
local function back(id, key)
  local r = P .. 'r:' .. id
  local f = redis.call('HMGET', r, 'state', 'owner', 'seq')
  if f[1] ~= 'in_flight' or f[2] ~= owner then return end
  move(id, 'in_flight', 'queued', f[3])
  redis.call('HDEL', r, 'owner')
  redis.call('HSET', r, 'upd', now)
  n = n + 1
  if redis.call('HGET', P .. 'lm:' .. key, 'owner') == owner then
    lane_free(key)
    redis.call('ZADD', P .. 'ready', now, key)
  end
end
if #ARGV == 3 then
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'own:' .. owner)) do
    local fly = redis.call('HGET', P .. 'lm:' .. key, 'fly')
    if fly then back(fly, key) end
  end
else
  for i = 4, #ARGV do
    local key = redis.call('HGET', P .. 'r:' .. ARGV[i], 'key')
    if key then back(ARGV[i], key) end
  end
end
return n
"""
)

# ARGV: P, id, now. Returns 1 when cancelled.
CANCEL = (
    LUA_PRELUDE
    + """
local id, now = ARGV[2], ARGV[3]
local r = P .. 'r:' .. id
local f = redis.call('HMGET', r, 'state', 'key', 'seq', 'cb')
if f[1] ~= 'queued' then return 0 end
local key = f[2]
local was_head = redis.call('ZRANK', P .. 'l:' .. key, id) == 0
move(id, 'queued', 'cancelled', f[3])
redis.call('HSET', r, 'upd', now)
redis.call('ZREM', P .. 'l:' .. key, id)
redis.call('ZADD', P .. 'done', now, id)
if f[4] == 'pending' then redis.call('ZADD', P .. 'cbp', f[3], id) end
if was_head and redis.call('EXISTS', P .. 'lm:' .. key) == 0 then
  advance(key, now)  -- a head waiting for a retry must not hold its lane back
end
return 1
"""
)

# ARGV: P, now, ids... Returns how many were dead.
REPLAY = (
    LUA_PRELUDE
    + """
local now = ARGV[2]
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local r = P .. 'r:' .. id
  local f = redis.call('HMGET', r, 'state', 'key', 'seq')
  if f[1] == 'dead' then
    n = n + 1
    move(id, 'dead', 'queued', f[3])
    redis.call('HSET', r, 'att', 0, 'next', now, 'upd', now)
    redis.call('ZREM', P .. 'cbp', id)
    redis.call('ZADD', P .. 'l:' .. f[2], f[3], id)
    if redis.call('EXISTS', P .. 'lm:' .. f[2]) == 0 then
      redis.call('ZADD', P .. 'ready', 'LT', now, f[2])
    end
  end
end
return n
"""
)

# ARGV: P, now, done cutoff, batch size. Forgets expired idempotency keys and requests
# done before the cutoff, a batch at a time (a script blocks the server while it runs).
# Returns {requests forgotten, keys forgotten}.
SWEEP = (
    LUA_PRELUDE
    + """
local now, cutoff, batch = ARGV[2], ARGV[3], tonumber(ARGV[4])
local keys = redis.call('ZRANGEBYSCORE', P .. 'iexp', '-inf', now, 'LIMIT', 0, batch)
for _, ik in ipairs(keys) do
  redis.call('DEL', ik)
  redis.call('ZREM', P .. 'iexp', ik)
end
local ids = redis.call('ZRANGEBYSCORE', P .. 'done', '-inf', '(' .. cutoff, 'LIMIT', 0, batch)
for _, id in ipairs(ids) do
  local r = P .. 'r:' .. id
  local f = redis.call('HMGET', r, 'state', 'size')
  if f[1] then
    redis.call('ZREM', P .. 's:' .. f[1], id)
    redis.call('INCRBY', P .. 'bytes', -tonumber(f[2] or '0'))
  end
  redis.call('DEL', r, P .. 'a:' .. id)
  redis.call('ZREM', P .. 'all', id)
  redis.call('ZREM', P .. 'done', id)
  redis.call('ZREM', P .. 'cbp', id)
end
return {#ids, #keys}
"""
)

# ARGV: P, id, callback state.
SET_CALLBACK = (
    LUA_PRELUDE
    + """
local id, cb = ARGV[2], ARGV[3]
local r = P .. 'r:' .. id
local f = redis.call('HMGET', r, 'state', 'seq')
if not f[1] then return 0 end
redis.call('HSET', r, 'cb', cb)
if cb == 'pending' and DONE[f[1]] then
  redis.call('ZADD', P .. 'cbp', f[2], id)
else
  redis.call('ZREM', P .. 'cbp', id)
end
return 1
"""
)
