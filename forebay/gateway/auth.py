"""Authentication: which consumer sent the request, from its API key.

The key is read from `Authorization: Bearer`, `X-API-Key`, or the header or query
parameter the operator names. With `auth.required`, a request without a known key gets
401 with `WWW-Authenticate`. Without it, a request with a known key is attributed to its
consumer and any other request is anonymous; an unknown credential is then left alone,
since it may be the origin's own (a bearer token the origin issued).

What the origin gets of a recognised key is `auth.forward`: `strip` (the default: the
key is the gateway's credential, not the origin's), `forward`, or `consumer` (stripped,
and the consumer's name sent in `auth.consumer_header`; a client's own copy of that
header is always dropped then, so it cannot be forged).

Placed before the request status stage, which shows a request only to the consumer
that sent it, and before the cache, which keeps non-public answers per consumer.
With no keys anywhere and auth not required, the stage costs one check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from forebay.admin import metrics
from forebay.gateway.exchange import exchange_of
from forebay.gateway.keyring import KeyringRef
from forebay.gateway.problem import send_problem
from forebay.settings_protections import AuthSettings

_CHALLENGE = b'Bearer realm="forebay"'


def _query_key(query: bytes, name: bytes) -> tuple[str | None, bytes]:
    """The key in the query string, and the query string without it."""
    found = None
    kept = []
    for part in query.split(b"&"):
        n, _, v = part.partition(b"=")
        if n == name and found is None:
            found = unquote(v.decode("latin-1").replace("+", " "))
        else:
            kept.append(part)
    return found, b"&".join(kept)


class Authenticate:
    def __init__(self, app: Any, keyring: KeyringRef, settings: AuthSettings) -> None:
        self.app = app
        self.keyring = keyring
        self.required = settings.required
        self.mode = settings.forward
        self.extra_header = settings.header.encode() if settings.header else None
        self.query = settings.query.encode() if settings.query else None
        self.consumer_header = settings.consumer_header.encode()
        self.failures = {
            r: metrics.AUTH_FAILURES.labels(r) for r in ("missing", "unknown", "forbidden")
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ring = self.keyring.current
        if not ring and not self.required and self.mode != "consumer":
            await self.app(scope, receive, send)
            return
        # Every place a key may be; the first known key wins. An unknown one may be the
        # origin's own credential (a bearer token it issued) when another is the key.
        found: list[tuple[str, bytes | None]] = []
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    found.append((token.strip().decode("latin-1"), name))
            elif name == b"x-api-key" or name == self.extra_header:
                found.append((value.strip().decode("latin-1"), name))
        stripped_query = b""
        if self.query is not None and scope["query_string"]:
            in_query, stripped_query = _query_key(scope["query_string"], self.query)
            if in_query:
                found.append((in_query, None))
        entry = None
        source: bytes | None = None
        for key, where in found:
            entry = ring.identify(key)
            if entry is not None:
                source = where
                break
        ex = exchange_of(scope)
        if entry is None:
            if self.required:
                return await self._refuse(send, ex, "unknown" if found else "missing")
            if self.mode == "consumer":
                scope["headers"] = [(n, v) for n, v in headers if n != self.consumer_header]
            await self.app(scope, receive, send)
            return
        ex.consumer = entry.name
        ex.consumer_entry = entry
        if self.mode != "forward":
            drop = {source, self.consumer_header}
            kept = [(n, v) for n, v in headers if n not in drop]
            if self.mode == "consumer":
                kept.append((self.consumer_header, entry.name.encode()))
            scope["headers"] = kept
            if source is None:
                scope["query_string"] = stripped_query
        await self.app(scope, receive, send)

    async def _refuse(self, send: Any, ex: Any, why: str) -> None:
        self.failures[why].inc()
        if why == "missing":
            return await send_problem(
                send,
                ex,
                401,
                "missing-api-key",
                "API key required",
                "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers=[(b"www-authenticate", _CHALLENGE)],
            )
        await send_problem(
            send,
            ex,
            401,
            "invalid-api-key",
            "Invalid API key",
            "The API key is not known or was revoked. Check the key, or ask the operator "
            "for a new one.",
            headers=[(b"www-authenticate", _CHALLENGE + b', error="invalid_token"')],
        )
