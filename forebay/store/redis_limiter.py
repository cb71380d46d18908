"""Rate-limit counters in Redis, shared by every gateway instance.

One Lua script does the whole check for all the limits of a request: it reads each
key's TAT, decides, and only if every limit admits the request writes the new TATs,
with an expiry at the moment the bucket is full again (a missing key is a full bucket).
Redis runs a script atomically, so concurrent gateways never race between a read and a
write. The time is Redis's own (`TIME`), so instances with drifting clocks agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from forebay.policy.gcra import Decision, Limit
from forebay.store.limiter import LimiterUnavailable

KEY_PREFIX = "forebay:rl:"

# KEYS: the buckets. ARGV[1]: now in seconds, or "" for Redis's clock; then, per key,
# the emission interval and the tolerance. Returns now, then per key 1/0 and a TAT
# (the new one when admitted, the stored one when refused).
SCRIPT = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local admitted = true
local tats = {}
local flags = {}
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local base = tonumber(redis.call('GET', key))
  if not base or base < now then base = now end
  local new_tat = base + emission
  if new_tat - now > tolerance + 1e-9 then
    admitted = false
    flags[i] = 0
    tats[i] = base
  else
    flags[i] = 1
    tats[i] = new_tat
  end
end
if admitted then
  for i, key in ipairs(KEYS) do
    local ttl = math.ceil((tats[i] - now) * 1000) + 1
    redis.call('SET', key, string.format('%.17g', tats[i]), 'PX', ttl)
  end
end
local out = {string.format('%.17g', now)}
for i = 1, #KEYS do
  out[#out + 1] = flags[i]
  out[#out + 1] = string.format('%.17g', tats[i])
end
return out
"""


def decision_from(limit: Limit, admitted: bool, tat: float, now: float) -> Decision:
    """The same `Decision` `policy.gcra.decide` makes, from what the script returns."""
    emission, tolerance = limit.emission, limit.tolerance
    if admitted:
        ahead = tat - now
        remaining = math.floor((tolerance - ahead) / emission + 1e-9)
        return Decision(True, tat, max(0, remaining), 0.0, ahead)
    ahead = tat + emission - now
    return Decision(False, tat, 0, ahead - tolerance, max(0.0, tat - now))


class RedisLimiter:
    def __init__(self, url: str, timeout: float, use_server_clock: bool = True) -> None:
        try:
            from redis import asyncio as aioredis
        except ImportError as e:  # pragma: no cover - an install without the extra
            raise LimiterUnavailable(
                "rate_limits.redis needs the redis extra: pip install 'forebay[redis]'"
            ) from e
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.script: Any = self.client.register_script(SCRIPT)
        self.use_server_clock = use_server_clock

    async def acquire(self, checks: Sequence[tuple[str, Limit]], now: float) -> list[Decision]:
        keys = [KEY_PREFIX + key for key, _ in checks]
        args: list[str] = ["" if self.use_server_clock else repr(now)]
        for _, limit in checks:
            args += [repr(limit.emission), repr(limit.tolerance)]
        try:
            out = await self.script(keys=keys, args=args)
        except Exception as e:  # connection refused, timeouts, a failing server
            raise LimiterUnavailable(f"Redis: {e!r}") from e
        at = float(out[0])
        return [
            decision_from(limit, int(out[1 + 2 * i]) == 1, float(out[2 + 2 * i]), at)
            for i, (_, limit) in enumerate(checks)
        ]

    async def close(self) -> None:
        await self.client.aclose()
