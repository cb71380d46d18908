"""Request limits checked before anything is read or forwarded: header count and size,
and a declared body size. Bodies without a length are counted as they stream
(`BodyCounter`), so a chunked upload cannot slip past the limit either."""

from __future__ import annotations

from typing import Any

from forebay.gateway.exchange import exchange_of
from forebay.gateway.problem import send_problem


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before its request was whole: there is nobody
    to answer, and what arrived must not be forwarded as if it were the request."""


class RequestLimits:
    def __init__(self, app: Any, max_body: int, max_header_bytes: int, max_headers: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = scope["headers"]
        if len(headers) > self.max_headers:
            return await self._too_many(scope, send, f"{len(headers)} headers")
        size = 0
        declared = None
        for name, value in headers:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                declared = value
        if size > self.max_header_bytes:
            return await self._too_many(scope, send, f"{size} bytes of headers")
        if declared is not None:
            if not declared.isdigit():
                return await send_problem(
                    send,
                    exchange_of(scope),
                    400,
                    "bad-request",
                    "Bad request",
                    "Content-Length is not a number.",
                )
            if int(declared) > self.max_body:
                return await self.too_large(scope, send)
        await self.app(scope, receive, send)

    async def _too_many(self, scope: dict[str, Any], send: Any, what: str) -> None:
        await send_problem(
            send,
            exchange_of(scope),
            431,
            "headers-too-large",
            "Request header fields too large",
            f"The request has {what}; the limits are {self.max_headers} headers and "
            f"{self.max_header_bytes} bytes. Send fewer or smaller headers.",
        )

    async def too_large(self, scope: dict[str, Any], send: Any) -> None:
        await send_problem(
            send,
            exchange_of(scope),
            413,
            "body-too-large",
            "Request body too large",
            f"The request body is larger than the limit of {self.max_body} bytes. "
            "Send a smaller body, or ask the operator to raise limits.max_body.",
            max_body=self.max_body,
        )
