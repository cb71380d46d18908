"""The connection under the Redis store: the URL, the key prefix, scripts, errors, and the
start-up check of the server's persistence.

Every key of one store starts with the prefix (`forebay:` unless the URL's `prefix=` says
otherwise), so several gateways' stores, or a store and other data, can share a database.
Scripts name their keys from the prefix at run time rather than through KEYS, which a
standalone Redis allows; a Redis Cluster is not supported (see docs/redis.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from prometheus_client import Gauge
from pydantic import ByteSize, TypeAdapter, ValidationError

from forebay.errors import ConfigError

DEFAULT_PREFIX = "forebay:"
POOL_SIZE = 64  # connections per process; each command holds one only while it runs
POOL_WAIT = 5.0  # seconds a command waits for a free connection before failing
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 10.0  # seconds for Redis's answer to one command or script

STORE_DURABLE = Gauge(
    "forebay_store_durable",
    "1 when the store keeps every acknowledged request through a crash of its server "
    "(SQLite; Redis with appendonly yes and appendfsync always), 0 when it may not, "
    "-1 when the Redis server does not say (CONFIG is disabled).",
    multiprocess_mode="min",
)


class StoreFull(RuntimeError):
    """The store reached its `max_size`, or Redis its `maxmemory`: nothing of the batch
    was stored, so the gateway answers 503 rather than a 202 it cannot keep."""


class StoreConflict(ValueError):
    """A batch carried a request id the store already holds; nothing of it was stored."""


@dataclass(frozen=True, slots=True)
class RedisUrl:
    client_url: str  # what redis-py gets: the URL without Forebay's own parameters
    prefix: str
    max_size: int | None


def parse_url(url: str) -> RedisUrl:
    """`redis://host:6379/0?prefix=gw1:&max_size=2GB`: Forebay's parameters are taken out,
    the others (redis-py's, such as `socket_timeout`) are left to the client."""
    base, _, query = url.partition("?")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for k, v in parse_qsl(query, keep_blank_values=True):
        (ours.__setitem__(k, v) if k in ("prefix", "max_size") else theirs.append((k, v)))
    max_size = None
    if "max_size" in ours:
        try:
            max_size = int(TypeAdapter(ByteSize).validate_python(ours["max_size"]))
        except ValidationError as e:
            raise ConfigError(f"{url}: max_size is not a size such as 500MB") from e
    prefix = ours.get("prefix") or DEFAULT_PREFIX
    return RedisUrl(base + ("?" + urlencode(theirs) if theirs else ""), prefix, max_size)


def public_url(url: str) -> str:
    """The store URL fit for a page or a script's output: a password in it, before the
    host or as the `password` parameter redis-py also reads, is replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    pairs = parts.query.split("&") if parts.query else []
    query = "&".join(
        "password=***" if unquote(pair.partition("=")[0]).lower() == "password" else pair
        for pair in pairs
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # as given: urlunsplit would turn memory:// into memory:
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def connect(url: RedisUrl) -> Any:
    try:
        from redis import asyncio as aioredis
    except ImportError as e:  # pragma: no cover - an install without the extra
        raise ConfigError(
            "the Redis store needs the redis extra: pip install 'forebay[redis]'"
        ) from e
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    # One immediate retry on a broken connection: after a Redis restart every pooled
    # connection is dead, and without it each would fail one command (an accept answered
    # with an error) before being replaced. Immediate, so a command that failed because
    # Redis died under it meets a dead server again rather than running twice; timeouts
    # are not retried, since the command may have run.
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    # A blocking pool: under a burst, a command waits for a free connection (up to
    # `timeout`) rather than failing at once as the default pool does past its size.
    # The URL's own parameters (`max_connections=`, `timeout=`, `socket_timeout=`...)
    # take precedence.
    pool = aioredis.BlockingConnectionPool.from_url(
        url.client_url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        # A Redis that hangs (or a port now taken by something else) must fail a command,
        # not hold an accept or a shutdown forever. Subscriptions are not affected.
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        decode_responses=False,  # bytes in, bytes out: bodies are binary
        health_check_interval=30,
        retry=retry,
    )
    return aioredis.Redis.from_pool(pool)


def raise_store_error(e: Exception) -> None:
    """Turn a script's refusal, or Redis's own out-of-memory answer, into our errors."""
    text = str(e)
    if text.startswith("FULL") or text.startswith("OOM") or "OOM command" in text:
        raise StoreFull(f"the Redis store is full: {text}") from e
    if text.startswith("DUPLICATE"):
        raise StoreConflict(f"a request id is already stored: {text}") from e


@dataclass(frozen=True, slots=True)
class Durability:
    durable: bool | None  # None: the server would not say
    detail: str


async def check_durability(client: Any) -> Durability:
    """What a crash of the Redis server could cost: a 202 is only a promise if the write
    behind it reached the disk before the answer (AOF with `appendfsync always`)."""
    try:
        aof = await client.config_get("appendonly")
        fsync = await client.config_get("appendfsync")
    except Exception as e:  # CONFIG renamed or disabled (managed Redis services do this)
        return Durability(None, f"CONFIG GET is not allowed ({e}); cannot tell")

    def value(reply: dict[Any, Any], name: str) -> str:
        v = reply.get(name.encode(), reply.get(name, b""))
        return v.decode() if isinstance(v, bytes) else str(v)

    appendonly, appendfsync = value(aof, "appendonly"), value(fsync, "appendfsync")
    if appendonly != "yes":
        return Durability(
            False, "appendonly is no: a Redis crash loses everything since the last snapshot"
        )
    if appendfsync != "always":
        return Durability(
            False,
            f"appendfsync is {appendfsync}: a Redis crash may lose the last second of "
            "acknowledged requests",
        )
    return Durability(True, "appendonly yes, appendfsync always")


# Lua helpers every request script shares. Times and other numbers are passed and stored
# as the strings Python wrote (repr of a float): Redis turns a Lua number back into a
# string with 14 significant digits, which would cut sub-millisecond parts off a Unix time,
# so scripts compare numbers with tonumber() but only ever store the original strings.
LUA_PRELUDE = """
local P = ARGV[1]
local function lane_free(key)
  local lm = P .. 'lm:' .. key
  local owner = redis.call('HGET', lm, 'owner')
  if owner then
    redis.call('SREM', P .. 'own:' .. owner, key)
    if redis.call('SCARD', P .. 'own:' .. owner) == 0 then
      redis.call('SREM', P .. 'owners', owner)
    end
  end
  redis.call('DEL', lm)
  redis.call('ZREM', P .. 'leased', key)
end
local function lane_head(key)
  return redis.call('ZRANGE', P .. 'l:' .. key, 0, 0)[1]
end
local function later(a, b)
  if tonumber(a) >= tonumber(b) then return a end
  return b
end
local function advance(key, now)
  lane_free(key)
  local head = lane_head(key)
  if not head then
    redis.call('ZREM', P .. 'ready', key)
    return
  end
  local due = redis.call('HGET', P .. 'r:' .. head, 'next')
  redis.call('ZADD', P .. 'ready', later(now, due), key)
end
local function move(id, old, new, seq)
  redis.call('ZREM', P .. 's:' .. old, id)
  redis.call('ZADD', P .. 's:' .. new, seq, id)
  redis.call('HSET', P .. 'r:' .. id, 'state', new)
end
local DONE = {succeeded = true, failed = true, cancelled = true, dead = true}
local FINAL = {succeeded = true, failed = true, cancelled = true}
"""
