"""What a proxy does to headers on the way through (RFC 9110 section 7.6, RFC 7239).

Headers travel as ASGI does them: lists of `(name, value)` byte pairs with lower-case
names. Working on bytes keeps the hot path free of decoding.
"""

from __future__ import annotations

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


def end_to_end(headers: Sequence[Header], drop: frozenset[bytes] = frozenset()) -> list[Header]:
    """The headers a proxy passes on: all but hop-by-hop ones and those in `drop`."""
    extra = connection_tokens(headers)
    skip = HOP_BY_HOP | extra | drop if extra or drop else HOP_BY_HOP
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
    prior_forwarded = b", ".join(v for n, v in headers if n == b"forwarded")
    prior_xff = b", ".join(v for n, v in headers if n == b"x-forwarded-for")
    element = f"for={_forwarded_node(client_host)}" if client_host else "for=unknown"
    element += f";proto={scheme}"
    if host:
        element += ';host="' + host.decode("latin-1").replace('"', "") + '"'
    forwarded = element.encode("latin-1")
    if prior_forwarded:
        forwarded = prior_forwarded + b", " + forwarded
    xff = (client_host or "unknown").encode("latin-1")
    if prior_xff:
        xff = prior_xff + b", " + xff
    out: list[Header] = [
        (b"forwarded", forwarded),
        (b"x-forwarded-for", xff),
        (b"x-forwarded-proto", scheme.encode("latin-1")),
    ]
    if host:
        out.append((b"x-forwarded-host", host))
    return out


FORWARDING_NAMES = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"host"}
)
