"""The answers a connection makes on its own, when no stage of the pipeline can (the
request could not be parsed, took too long, or found no room): RFC 9457 problems with
a request id of their own, each followed by closing the connection."""

from __future__ import annotations

import json
from dataclasses import dataclass

from forebay.gateway.exchange import new_request_id
from forebay.gateway.problem import PROBLEM_BASE
from forebay.http.cycle import STATUS_LINES, RequestCycle


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    slug: str
    title: str
    detail: str
    headers: bytes = b""

    def body(self, request_id: str) -> bytes:
        doc = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "request_id": request_id,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def answer(self) -> tuple[str, bytes]:
        """A fresh request id, and the whole answer carrying it."""
        request_id = new_request_id()
        body = self.body(request_id)
        head = b"%scontent-type: application/problem+json\r\nx-request-id: %s\r\n%s" % (
            STATUS_LINES[self.status],
            request_id.encode(),
            self.headers,
        )
        return request_id, head + b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )


BAD_REQUEST = Problem(
    400,
    "bad-request",
    "Malformed HTTP request",
    "The request could not be parsed as HTTP/1.1. "
    "Check the request line, the headers and the body framing.",
)
UNAVAILABLE = Problem(
    503,
    "too-many-connections",
    "Too many connections",
    "The gateway has as many open connections as it allows. Retry shortly, "
    "and reuse connections (keep-alive) rather than opening new ones.",
    b"retry-after: 1\r\n",
)
TIMEOUT = Problem(
    408,
    "request-timeout",
    "Request too slow",
    "The client took too long to send the request's headers or body. "
    "Send the whole request promptly.",
)
INTERNAL = Problem(
    500,
    "internal-error",
    "Internal gateway error",
    "The gateway failed while handling this request; the error is logged with this "
    "request id. Retry, and report it with the id if it persists.",
)


async def send_internal_error(cycle: RequestCycle, request_id: str) -> None:
    """The 500 for a request whose app raised before starting its answer; the connection
    is closed after it."""
    cycle.keep_alive = False
    body = INTERNAL.body(request_id)
    await cycle.send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await cycle.send({"type": "http.response.body", "body": body})
