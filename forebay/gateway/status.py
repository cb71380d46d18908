"""`/_forebay/requests/{id}`: the state of an accepted request, its stored response,
and cancelling it. Only the consumer that sent a request can see it; to anyone else it
does not exist (404), so ids cannot be probed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from forebay.gateway.exchange import Exchange, exchange_of
from forebay.gateway.problem import send_body, send_problem
from forebay.gateway.replies import STATUS_PREFIX, response_messages, status_document
from forebay.policy.ids import looks_like_request_id
from forebay.policy.request_states import State
from forebay.store.base import RequestStore

RESERVED = "/_forebay/"


class RequestStatus:
    def __init__(
        self, app: Any, requests: RequestStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.requests = requests
        self.clock = clock

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        if not path.startswith(RESERVED):
            await self.app(scope, receive, send)
            return
        ex = exchange_of(scope)
        rest = path[len(STATUS_PREFIX) :] if path.startswith(STATUS_PREFIX) else ""
        rid, _, tail = rest.partition("/")
        method = scope["method"]
        if not looks_like_request_id(rid) or tail not in ("", "response"):
            return await self._not_found(send, ex)
        r = await self.requests.get(rid)
        if r is None or r.consumer != ex.consumer:
            return await self._not_found(send, ex)
        if tail == "response" and method in ("GET", "HEAD"):
            if r.response is None:
                return await send_problem(
                    send,
                    ex,
                    404,
                    "no-response-yet",
                    "No response yet",
                    f"The request is {r.state.value}; the origin's answer is kept here once "
                    "it is delivered.",
                )
            ex.status, ex.response_started = r.response.status, True
            for message in response_messages(
                r.response, [(b"x-request-id", ex.request_id.encode())]
            ):
                await send(message)
            return
        if tail == "" and method == "DELETE":
            after = (
                await self.requests.cancel(rid, self.clock()) if r.state == State.QUEUED else None
            )
            if after is None or after.state != State.CANCELLED:
                state = (after or r).state.value
                return await send_problem(
                    send,
                    ex,
                    409,
                    "cannot-cancel",
                    "Cannot cancel",
                    f"The request is {state}; only queued requests can be cancelled.",
                )
            return await self._json(send, ex, 200, status_document(after))
        if tail == "" and method in ("GET", "HEAD"):
            return await self._json(send, ex, 200, status_document(r))
        allowed = b"GET, HEAD, DELETE" if tail == "" else b"GET, HEAD"
        await send_problem(
            send,
            ex,
            405,
            "method-not-allowed",
            "Method not allowed",
            f"{method} is not supported here.",
            headers=[(b"allow", allowed)],
        )

    async def _not_found(self, send: Any, ex: Exchange) -> None:
        await send_problem(
            send,
            ex,
            404,
            "no-such-request",
            "No such request",
            "There is no accepted request with this id for you. Ids are only visible to "
            "the consumer that sent the request.",
        )

    async def _json(self, send: Any, ex: Exchange, status: int, doc: dict[str, Any]) -> None:
        await send_body(send, ex, status, b"application/json", json.dumps(doc).encode())
