"""The one connection pool to the origin, shared by every stage and, later, the
dispatcher. aiohttp is told to leave requests and responses as they are: no automatic
headers, no decompression, no cookies, no redirects."""

from __future__ import annotations

import aiohttp

from forebay.settings import Timeouts

# Headers aiohttp would otherwise invent; a proxy passes the client's own or none.
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def origin_session(timeouts: Timeouts, max_connections: int = 1000) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,
        keepalive_timeout=30,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        ),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_SKIP_AUTO,
        raise_for_status=False,
    )
