"""No exception ever reaches the client as a stack trace: it becomes a 500 problem with
the request id, and the traceback goes to the log under the same id."""

from __future__ import annotations

from typing import Any

import structlog

from forebay.gateway.exchange import exchange_of
from forebay.gateway.limits import ClientGone
from forebay.gateway.problem import send_problem

log = structlog.get_logger("forebay.gateway")


class ErrorBoundary:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = exchange_of(scope)
        try:
            await self.app(scope, receive, send)
        except ClientGone:
            # Nobody to answer; the access log shows the request with status 499.
            ex.error = ex.error or "client-gone"
        except Exception:
            log.exception(
                "unhandled error",
                request_id=ex.request_id,
                method=scope.get("method"),
                path=scope.get("path"),
            )
            if ex.response_started:
                # Part of the answer is on the wire; closing the connection is all that is left.
                raise
            await send_problem(
                send,
                ex,
                500,
                "internal-error",
                "Internal gateway error",
                "The gateway failed while handling this request. The error is logged with "
                "this request id; quote it when reporting the problem.",
            )
