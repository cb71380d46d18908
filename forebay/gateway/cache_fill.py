"""The cache's side of a forwarded GET: watch the origin's answer go by, decide at its
headers whether it will be stored, and build the entry; and serve entries.

`Fill` stands in for `send` while the answer comes back. An answer that will be stored
is held back (it is small: bounded by `cache.max_entry`) and then served from the entry,
like a hit, so HEAD and the client's own validators are handled in one place. Anything
else is passed to the client at once, and the requests waiting for this fetch are let
go the moment the headers show it (`on_uncacheable`), not when the body is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from forebay.gateway.exchange import ASGIMessage, Exchange
from forebay.policy import freshness
from forebay.policy.cache_keys import vary_names, vary_values
from forebay.policy.conditional import not_modified
from forebay.store.cache import CachedResponse

Headers = Sequence[tuple[bytes, bytes]]

# Headers the gateway sets itself when it serves an entry.
_NOT_STORED = frozenset(
    {b"content-length", b"transfer-encoding", b"age", b"x-request-id", b"cache-status"}
)
# What a 304 carries (RFC 9110 section 15.4.5), plus Last-Modified.
_ON_304 = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary", b"last-modified"}
)
_FACTS = frozenset(
    {
        b"cache-control",
        b"age",
        b"date",
        b"expires",
        b"vary",
        b"set-cookie",
        b"etag",
        b"last-modified",
    }
)
HIT = b"forebay; hit"


class Mode(Enum):
    PASS = "pass"  # relayed to the client as it comes
    BUFFER = "buffer"  # to be stored, then served from the entry
    REVALIDATED = "revalidated"  # the origin said 304 to our validators
    FAILED = "failed"  # the origin failed and a stale entry may stand in


def facts(headers: Headers) -> dict[bytes, list[str]]:
    """The response headers the cache decides on, by lower-case name."""
    out: dict[bytes, list[str]] = {}
    for name, value in headers:
        if name in _FACTS:
            out.setdefault(name, []).append(value.decode("latin-1"))
    return out


def _one(found: dict[bytes, list[str]], name: bytes) -> str | None:
    values = found.get(name)
    return values[0] if values else None


def judge(
    status: int, headers: Headers, rules: freshness.CacheRules, authorization: bool
) -> tuple[freshness.Verdict, dict[bytes, list[str]]]:
    found = facts(headers)
    names = vary_names(found.get(b"vary", ()))
    verdict = freshness.verdict(
        status,
        found.get(b"cache-control", ()),
        rules,
        age=_one(found, b"age"),
        date=_one(found, b"date"),
        expires=_one(found, b"expires"),
        vary_star=names is None,
        set_cookie=b"set-cookie" in found,
        authorization=authorization,
    )
    return verdict, found


def build_entry(
    status: int,
    headers: Headers,
    body: bytes,
    verdict: freshness.Verdict,
    found: dict[bytes, list[str]],
    request_headers: Headers,
    consumer: str,
    endpoint_id: str | None,
    now: float,
) -> CachedResponse:
    names = vary_names(found.get(b"vary", ())) or ()
    return CachedResponse(
        status=status,
        headers=[(n, v) for n, v in headers if n not in _NOT_STORED],
        body=body,
        stored_at=now,
        ttl=verdict.ttl,
        stale_while_revalidate=verdict.stale_while_revalidate,
        stale_if_error=verdict.stale_if_error,
        initial_age=verdict.initial_age,
        etag=_one(found, b"etag"),
        last_modified=_one(found, b"last-modified"),
        consumer=None if verdict.public else consumer,
        vary=names,
        vary_values=vary_values(names, request_headers),
        shared_with_authorization=verdict.shared_with_authorization,
        endpoint_id=endpoint_id,
    )


def refreshed_headers(stored: Headers, not_modified_headers: Headers) -> list[tuple[bytes, bytes]]:
    """A stored answer's headers updated with those of the origin's 304 (RFC 9111 4.3.4)."""
    fresh = [(n, v) for n, v in not_modified_headers if n in _ON_304]
    names = {n for n, _ in fresh}
    return [(n, v) for n, v in stored if n not in names] + fresh


def matches(entry: CachedResponse, headers: Headers, consumer: str, authorization: bool) -> bool:
    """Whether a stored variant may answer this request."""
    if entry.consumer is not None and entry.consumer != consumer:
        return False
    if authorization and not entry.shared_with_authorization:
        return False
    return not entry.vary or vary_values(entry.vary, headers) == entry.vary_values


async def serve(
    send: Any,
    ex: Exchange,
    entry: CachedResponse,
    age: float,
    cache_status: bytes,
    head: bool,
    validators: tuple[bytes | None, bytes | None] | None = None,
) -> None:
    """Answer from an entry, with `Age` and `Cache-Status`; 304 when the client's
    validators match it."""
    whole = int(age)
    if cache_status is HIT:
        if entry.memo_age != whole:
            entry.memo_headers = [
                *entry.headers,
                (b"content-length", str(len(entry.body)).encode()),
                (b"age", str(whole).encode()),
                (b"cache-status", HIT),
            ]
            entry.memo_age = whole
        headers = [*entry.memo_headers, (b"x-request-id", ex.request_id.encode())]
    else:
        headers = [
            *entry.headers,
            (b"content-length", str(len(entry.body)).encode()),
            (b"age", str(whole).encode()),
            (b"cache-status", cache_status),
            (b"x-request-id", ex.request_id.encode()),
        ]
    status, body = entry.status, entry.body
    if validators is not None and status == 200:
        inm, ims = validators
        if not_modified(
            inm.decode("latin-1") if inm is not None else None,
            ims.decode("latin-1") if ims is not None else None,
            entry.etag,
            entry.last_modified,
        ):
            status, body = 304, b""
            headers = [(n, v) for n, v in headers if n not in _ALWAYS_ENTITY]
    if head:
        body = b""
    ex.status = status
    ex.response_started = True
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Headers about the body, which a 304 does not carry.
_ALWAYS_ENTITY = frozenset({b"content-length", b"content-type", b"content-encoding"})


class Fill:
    """The `send` of a forwarded GET whose answer may be stored (see the module doc)."""

    def __init__(
        self,
        send: Any,
        rules: freshness.CacheRules,
        authorization: bool,
        max_entry: int,
        stale: CachedResponse | None,
        stale_usable: bool,
        on_uncacheable: Callable[[], None],
    ) -> None:
        self.send = send
        self.rules = rules
        self.authorization = authorization
        self.max_entry = max_entry
        self.stale = stale
        self.stale_usable = stale_usable  # inside its stale-if-error period
        self.on_uncacheable = on_uncacheable
        self.mode: Mode | None = None
        self.status = 0
        self.headers: Headers = ()
        self.parts: list[bytes] = []
        self.size = 0
        self.complete = False
        self.verdict: freshness.Verdict | None = None
        self.found: dict[bytes, list[str]] = {}

    async def __call__(self, message: ASGIMessage) -> None:
        if message["type"] == "http.response.start":
            await self._start(message)
            return
        if self.mode is Mode.PASS:
            await self.send(message)
            return
        body = message.get("body", b"")
        if body:
            self.parts.append(body)
            self.size += len(body)
        if not message.get("more_body", False):
            self.complete = True
        elif self.mode is Mode.BUFFER and self.size > self.max_entry:
            await self._give_up(b"detail=too-large")

    async def _start(self, message: ASGIMessage) -> None:
        self.status, self.headers = message["status"], message["headers"]
        if self.stale is not None and self.status == 304:
            self.mode = Mode.REVALIDATED
            return
        if self.stale_usable and self.status >= 500:
            self.mode = Mode.FAILED
            return
        self.verdict, self.found = judge(self.status, self.headers, self.rules, self.authorization)
        if self.verdict.store:
            self.mode = Mode.BUFFER
            return
        self.mode = Mode.PASS
        self.on_uncacheable()
        detail = b"detail=" + self.verdict.reason.encode()
        await self.send(_tagged(message, b"forebay; fwd=uri-miss; " + detail))

    async def _give_up(self, detail: bytes) -> None:
        """Too large to store after all: relay what has come and the rest as it comes."""
        self.mode = Mode.PASS
        self.on_uncacheable()
        start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
        await self.send(_tagged(start, b"forebay; fwd=uri-miss; " + detail))
        await self.send(
            {"type": "http.response.body", "body": b"".join(self.parts), "more_body": True}
        )
        self.parts = []

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


def _tagged(message: ASGIMessage, cache_status: bytes) -> ASGIMessage:
    headers = [*message["headers"], (b"cache-status", cache_status)]
    return {**message, "headers": headers}


class Flight:
    """One fetch of a key that other requests for it wait on."""

    __slots__ = ("done", "entry", "generation", "path", "stale")

    def __init__(self, path: str, generation: int) -> None:
        self.path = path
        self.generation = generation
        self.done = asyncio.Event()
        self.entry: CachedResponse | None = None  # what the fetch stored (or would have)
        self.stale: CachedResponse | None = None  # served stale because the origin failed
