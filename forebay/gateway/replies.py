"""Answers about accepted requests: the 202, the status document, a stored response."""

from __future__ import annotations

import base64
import math
import time
from datetime import UTC, datetime
from typing import Any

from forebay.dispatch.model import AcceptedRequest, StoredResponse

STATUS_PREFIX = "/_forebay/requests/"


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_second: tuple[float, str] = (math.nan, "")  # the last whole second formatted, and its text


def rfc3339_utc(ts: float) -> str:
    """`rfc3339` for the hot path: the same text, without building a datetime, and with
    the seconds formatted once per second (glibc's strftime looks up the local time zone
    on every call, though this format has none)."""
    frac, whole = math.modf(ts)  # split as datetime.fromtimestamp does, for the same text
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    global _second
    second, text = _second  # one read: a tuple is replaced whole, never half-updated
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micros // 1000:03d}Z"


def status_url(request_id: str) -> str:
    return STATUS_PREFIX + request_id


def accepted_body(r: AcceptedRequest) -> bytes:
    # Formatted rather than serialised: every value is an id, a state name or a time,
    # none of which needs escaping, and this runs once per accepted request.
    at = rfc3339_utc(r.accepted_at)
    return (
        f'{{"id": "{r.id}", "status": "{r.state.value}", '
        f'"status_url": "{STATUS_PREFIX}{r.id}", "accepted_at": "{at}"}}'
    ).encode()


def _body_json(body: bytes) -> dict[str, Any]:
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def status_document(r: AcceptedRequest) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": r.id,
        "status": r.state.value,
        "endpoint": r.endpoint,
        "method": r.method,
        "target": r.target,
        "ordering_key": r.ordering_key,
        "accepted_at": rfc3339(r.accepted_at),
        "updated_at": rfc3339(r.updated_at),
        "next_attempt_at": rfc3339(r.next_attempt_at) if r.state.value == "queued" else None,
        "attempts": [
            {
                "number": a.number,
                "at": rfc3339(a.started_at),
                "status": a.status,
                "latency_ms": None if a.latency is None else round(a.latency * 1000, 3),
                "error": a.error,
            }
            for a in r.history
        ],
        "status_url": status_url(r.id),
        "response": None,
        "callback": r.callback_state,
    }
    if r.response is not None:
        doc["response_url"] = status_url(r.id) + "/response"
        doc["response"] = {
            "status": r.response.status,
            "headers": [[n, v] for n, v in r.response.headers],
            **_body_json(r.response.body),
        }
    return doc


def response_messages(
    resp: StoredResponse, extra: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """The ASGI messages that replay a stored origin response verbatim."""
    headers = [
        (n.lower().encode("latin-1"), v.encode("latin-1"))
        for n, v in resp.headers
        if n.lower() != "content-length"
    ]
    headers.append((b"content-length", str(len(resp.body)).encode()))
    return [
        {"type": "http.response.start", "status": resp.status, "headers": headers + extra},
        {"type": "http.response.body", "body": resp.body},
    ]
