"""The headers of an accepted request: the few accept reads itself, and the ones stored
for its delivery (the client's end-to-end headers, this hop's forwarding headers, trace
context and the Idempotency-Key the origin will see)."""

from __future__ import annotations

from typing import Any

from forebay.gateway.exchange import random_bytes
from forebay.policy.forwarding import FORWARDING_NAMES, end_to_end, forwarding_headers
from forebay.policy.tracing import new_traceparent, valid_traceparent

Headers = list[tuple[bytes, bytes]]

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
) -> list[tuple[str, str]]:
    """What the origin will be sent with the request, stored with it."""
    headers: Headers = scope["headers"]
    client = scope.get("client")
    forwarded = end_to_end(headers, _DROP)
    forwarded += forwarding_headers(
        headers, client[0] if client else None, scope.get("scheme", "http"), own.get(b"host")
    )
    traceparent = own.get(b"traceparent")
    if traceparent is None or not valid_traceparent(traceparent):
        traceparent = new_traceparent(random_bytes)
    forwarded.append((b"traceparent", traceparent))
    forwarded.append((b"idempotency-key", idempotency_key.encode("latin-1")))
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in forwarded]
