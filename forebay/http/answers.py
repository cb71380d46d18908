"""The answers a connection makes on its own, before any request exists (so without a
request id): RFC 9457 problems, each followed by closing the connection."""

from __future__ import annotations

import json

from forebay.gateway.problem import PROBLEM_BASE
from forebay.http.cycle import STATUS_LINES


def _problem(status: int, slug: str, title: str, detail: str) -> bytes:
    """A problem body for answers made before any request exists, so without its id."""
    doc = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    return json.dumps(doc, separators=(",", ":")).encode()


def _last_answer(status: int, body: bytes, extra: bytes = b"") -> bytes:
    """A whole answer after which the connection closes."""
    return b"%scontent-type: application/problem+json\r\n%sconnection: close\r\n" % (
        STATUS_LINES[status],
        extra,
    ) + b"content-length: %d\r\n\r\n%s" % (len(body), body)


BAD_REQUEST = _last_answer(
    400,
    _problem(
        400,
        "bad-request",
        "Malformed HTTP request",
        "The request could not be parsed as HTTP/1.1. "
        "Check the request line, the headers and the body framing.",
    ),
)
UNAVAILABLE = _last_answer(
    503,
    _problem(
        503,
        "too-many-connections",
        "Too many connections",
        "The gateway has as many open connections as it allows. Retry shortly, "
        "and reuse connections (keep-alive) rather than opening new ones.",
    ),
    b"retry-after: 1\r\n",
)
TIMEOUT = _last_answer(
    408,
    _problem(
        408,
        "request-timeout",
        "Request too slow",
        "The client took too long to send the request's headers or body. "
        "Send the whole request promptly.",
    ),
)
INTERNAL_BODY = _problem(
    500,
    "internal-error",
    "Internal gateway error",
    "The gateway failed while handling this request; the error is logged. "
    "Retry, and report it if it persists.",
)
