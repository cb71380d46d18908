"""`/_forebay/requests/{id}` run in-process on a real store: a request is visible only to
the consumer that sent it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forebay.dispatch.model import AcceptedRequest
from forebay.gateway.exchange import Exchange
from forebay.gateway.status import RequestStatus
from forebay.policy.ids import new_request_id
from forebay.store import Store, open_store


async def call(app: Any, method: str, path: str, consumer: str) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    scope["forebay"] = Exchange(consumer=consumer)
    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def passed_on(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a /_forebay/ path must not reach the origin")


@pytest.fixture
async def store() -> Any:
    s = await open_store("memory://")
    yield s
    await s.close()


async def accepted_for(store: Store, consumer: str) -> str:
    rid = new_request_id(1000.0, lambda n: bytes(range(n)))
    r = AcceptedRequest(
        id=rid,
        consumer=consumer,
        endpoint_id=None,
        endpoint="POST /orders",
        method="POST",
        target="/orders",
        headers=[],
        body=b"{}",
        ordering_key="/orders",
        fingerprint="f",
        accepted_at=1000.0,
    )
    assert await store.requests.accept([r], 60) == [None]
    return rid


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_another_consumer_gets_404(store: Store, method: str) -> None:
    app = RequestStatus(passed_on, store.requests)
    rid = await accepted_for(store, "alice")
    status, body = await call(app, method, f"/_forebay/requests/{rid}", "mallory")
    assert status == 404 and body["type"].endswith("/no-such-request")
    status, _ = await call(app, "GET", f"/_forebay/requests/{rid}/response", "mallory")
    assert status == 404
    # Nothing changed for the owner: still queued, still cancellable by her.
    status, body = await call(app, "GET", f"/_forebay/requests/{rid}", "alice")
    assert status == 200 and body["status"] == "queued"
    status, body = await call(app, "DELETE", f"/_forebay/requests/{rid}", "alice")
    assert status == 200 and body["status"] == "cancelled"


async def test_unknown_and_malformed_ids_are_404(store: Store) -> None:
    app = RequestStatus(passed_on, store.requests)
    for path in ("/_forebay/requests/nope", "/_forebay/requests/", "/_forebay/other"):
        status, _ = await call(app, "GET", path, "")
        assert status == 404, path
