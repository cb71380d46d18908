"""What a proxy does to headers on the way through (RFC 9110 section 7.6, RFC 7239).

Headers travel as ASGI does them: lists of `(name, value)` byte pairs with lower-case
names. Working on bytes keeps the hot path free of decoding.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

Header = tuple[bytes, bytes]

# RFC 9110 7.6.1 plus the legacy ones every proxy strips. `te` and `trailer` are
# connection-specific; `proxy-*` headers are for this hop only.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def connection_tokens(headers: Iterable[Header]) -> frozenset[bytes]:
    """Header names listed in `Connection`, which are hop-by-hop for this message only."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


@functools.lru_cache(maxsize=64)
def _skipped(drop: frozenset[bytes]) -> frozenset[bytes]:
    # Callers pass a few constant sets: their union with the hop-by-hop names is made once.
    return HOP_BY_HOP | drop


def end_to_end(headers: Sequence[Header], drop: frozenset[bytes] = frozenset()) -> list[Header]:
    """The headers a proxy passes on: all but hop-by-hop ones and those in `drop`."""
    skip = _skipped(drop)
    if any(n == b"connection" for n, _ in headers):
        skip = skip | connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in skip]


def _forwarded_node(host: str) -> str:
    # RFC 7239 6: IPv6 addresses are quoted and bracketed.
    return f'"[{host}]"' if ":" in host else host


def forwarding_headers(
    headers: Sequence[Header],
    client_host: str | None,
    scheme: str,
    host: bytes | None,
) -> list[Header]:
    """`Forwarded` and `X-Forwarded-*` for the request as this proxy received it.

    Existing `Forwarded` and `X-Forwarded-For` chains are extended, as nginx's
    `$proxy_add_x_forwarded_for` does; proto and host describe this hop.
    """
    prior_forwarded: list[bytes] = []
    prior_xff: list[bytes] = []
    for n, v in headers:  # one pass; most requests carry neither
        if not v:
            continue  # an empty header adds no hop, and must not add an empty list item
        if n == b"forwarded":
            prior_forwarded.append(v)
        elif n == b"x-forwarded-for":
            prior_xff.append(v)
    node = _forwarded_node(client_host) if client_host else "unknown"
    if host:
        element = f'for={node};proto={scheme};host="{host.decode("latin-1").replace(chr(34), "")}"'
    else:
        element = f"for={node};proto={scheme}"
    prior_forwarded.append(element.encode("latin-1"))
    prior_xff.append((client_host or "unknown").encode("latin-1"))
    out: list[Header] = [
        (b"forwarded", b", ".join(prior_forwarded)),
        (b"x-forwarded-for", b", ".join(prior_xff)),
        (b"x-forwarded-proto", scheme.encode("latin-1")),
    ]
    if host:
        out.append((b"x-forwarded-host", host))
    return out


FORWARDING_NAMES = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"host"}
)
