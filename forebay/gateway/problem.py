"""Answers the gateway makes itself: RFC 9457 problem details, always with the request id.

Each problem type has a slug; its URI points at the page in `docs/problems.md` that says
what happened and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from forebay.gateway.exchange import Exchange

PROBLEM_BASE = "https://forebay.dev/problems/"

Send = Callable[[dict[str, Any]], Awaitable[None]]


def problem_body(
    status: int, slug: str, title: str, detail: Any, request_id: str, **extra: Any
) -> bytes:
    """`detail` is text, or (for the admin API's invalid input) a list of the problems."""
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def send_body(
    send: Send,
    ex: Exchange,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """An answer the gateway makes itself: never cached, always with the request id."""
    ex.status = status
    ex.response_started = True
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", ex.request_id.encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_problem(
    send: Send,
    ex: Exchange,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    **extra: Any,
) -> None:
    ex.error = ex.error or slug
    body = problem_body(status, slug, title, detail, ex.request_id, **extra)
    ex.sample_body = body  # kept if this turns out to be a failure worth capturing
    await send_body(send, ex, status, b"application/problem+json", body, headers)
