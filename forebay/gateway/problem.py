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
    status: int, slug: str, title: str, detail: str, request_id: str, **extra: Any
) -> bytes:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


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
    body = problem_body(status, slug, title, detail, ex.request_id, **extra)
    ex.status = status
    ex.error = ex.error or slug
    ex.response_started = True
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", ex.request_id.encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
