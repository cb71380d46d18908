"""The headers of an accepted request: the few accept reads itself, and the ones stored
for its delivery (the client's end-to-end headers, this hop's forwarding headers, trace
context and the Idempotency-Key the origin will see)."""

from __future__ import annotations

import functools
from typing import Any

from forebay.gateway.exchange import random_bytes
from forebay.policy.forwarding import (
    FORWARDING_NAMES,
    HOP_BY_HOP,
    end_to_end,
    forwarding_headers,
)
from forebay.policy.tracing import new_traceparent, valid_traceparent

Headers = list[tuple[bytes, bytes]]
TextHeaders = list[tuple[str, str]]

# The gateway's own request headers, and ones set again at delivery.
_DROP = FORWARDING_NAMES | {
    b"content-length",
    b"traceparent",
    b"expect",
    b"prefer",
    b"idempotency-key",
    b"forebay-callback",
    b"forebay-ordering-key",
}
_SKIP = HOP_BY_HOP | _DROP
# With none of these, the forwarding headers depend on the connection alone (the client's
# address, the scheme, Host), and the client's headers pass through as they came.
_CHAINED = frozenset({b"forwarded", b"x-forwarded-for", b"connection"})
_OWN = frozenset(
    {
        b"host",
        b"prefer",
        b"idempotency-key",
        b"forebay-callback",
        b"forebay-ordering-key",
        b"traceparent",
    }
)


def own_headers(headers: Headers) -> dict[bytes, bytes]:
    """The request headers accept reads itself, the first of each, in one pass (for
    `prefer`, whose every value counts, whether there is one)."""
    found: dict[bytes, bytes] = {}
    for n, v in headers:
        if n in _OWN and n not in found:
            found[n] = v
    return found


def text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def delivery_headers(
    scope: dict[str, Any], own: dict[bytes, bytes], idempotency_key: str
) -> TextHeaders:
    """What the origin will be sent with the request, stored with it."""
    headers: Headers = scope["headers"]
    client = scope.get("client")
    client_host = client[0] if client else None
    scheme = scope.get("scheme", "http")
    # One pass for the common request, which extends no forwarding chain and names no
    # header in `Connection`; accept builds this for every request it takes in.
    out: TextHeaders = []
    for n, v in headers:
        if n in _SKIP:
            if n in _CHAINED:
                out = _chained(headers, client_host, scheme, own.get(b"host"))
                break
            continue
        out.append((n.decode("latin-1"), v.decode("latin-1")))
    else:
        out += _this_hop(client_host, scheme, own.get(b"host"))
    traceparent = own.get(b"traceparent")
    if traceparent is None or not valid_traceparent(traceparent):
        traceparent = new_traceparent(random_bytes)
    out.append(("traceparent", traceparent.decode("latin-1")))
    out.append(("idempotency-key", idempotency_key))
    return out


def _chained(
    headers: Headers, client_host: str | None, scheme: str, host: bytes | None
) -> TextHeaders:
    forwarded = end_to_end(headers, _DROP)
    forwarded += forwarding_headers(headers, client_host, scheme, host)
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in forwarded]


@functools.lru_cache(maxsize=1024)
def _this_hop(
    client_host: str | None, scheme: str, host: bytes | None
) -> tuple[tuple[str, str], ...]:
    """This hop's forwarding headers for a request that extends no chain: the same for
    every request of a connection, so made once."""
    return tuple(
        (n.decode("latin-1"), v.decode("latin-1"))
        for n, v in forwarding_headers([], client_host, scheme, host)
    )
