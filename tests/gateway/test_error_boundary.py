"""An exception in any stage: a 500 problem with the request id on the wire, the
traceback in the log under that id, a captured sample, and nothing of the exception in
the answer."""

from __future__ import annotations

import json
from typing import Any

from structlog.testing import capture_logs

from forebay.gateway.capture import ErrorCapture
from forebay.gateway.errors import ErrorBoundary
from forebay.gateway.observe import Observe
from forebay.settings import Settings
from forebay.store.errors_log import MemoryErrorLog


async def crashing_stage(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise RuntimeError("secret internals: /srv/app/db.py line 12")


async def test_an_unhandled_exception_is_a_500_problem_logged_and_captured() -> None:
    errors = MemoryErrorLog()
    capture = ErrorCapture(errors, Settings())
    app = Observe(ErrorBoundary(crashing_stage), capture, access=True)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/boom",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer k")],
    }
    with capture_logs() as logs:
        await app(scope, receive, send)
    start, body = sent[0], sent[1]["body"]
    headers = dict(start["headers"])
    assert start["status"] == 500
    assert headers[b"content-type"] == b"application/problem+json"
    doc = json.loads(body)
    assert doc["type"].endswith("/internal-error") and doc["status"] == 500
    assert doc["request_id"] == headers[b"x-request-id"].decode()
    assert b"secret internals" not in body and b"Traceback" not in body
    crash = next(e for e in logs if e["event"] == "unhandled error")
    assert crash["request_id"] == doc["request_id"] and crash["exc_info"] is True
    access = next(e for e in logs if e["event"] == "request")
    assert access["status"] == 500 and access["error"] == "internal-error"
    await capture.flush()
    [kept] = await errors.recent()
    assert kept.kind == "internal-error" and kept.request_id == doc["request_id"]
    assert kept.request_headers == [("authorization", "[redacted]")]
