"""Match the request to its endpoint. Unmatched requests pass through unmanaged, or get
404/405 in strict mode."""

from __future__ import annotations

from typing import Any

from forebay.catalog.catalog import Catalog
from forebay.gateway.exchange import exchange_of
from forebay.gateway.problem import send_problem


class CatalogRef:
    """The current routing snapshot; replaced whole, never mutated, so readers need no lock."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.current = catalog or Catalog()


class Routing:
    def __init__(self, app: Any, catalog: CatalogRef, strict: bool) -> None:
        self.app = app
        self.catalog = catalog
        self.strict = strict

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ex = exchange_of(scope)
        catalog = self.catalog.current
        route, path_known = catalog.match(scope["method"], scope["path"])
        ex.route = route
        if route is None and self.strict:
            if path_known:
                allowed = ", ".join(catalog.allowed(scope["path"]))
                return await send_problem(
                    send,
                    ex,
                    405,
                    "method-not-allowed",
                    "Method not allowed",
                    f"{scope['method']} is not an endpoint of this API at this path; "
                    f"allowed: {allowed}.",
                    headers=[(b"allow", allowed.encode())],
                )
            return await send_problem(
                send,
                ex,
                404,
                "no-such-endpoint",
                "No such endpoint",
                f"{scope['method']} {scope['path']} matches no endpoint of this API, and the "
                "gateway is in strict mode.",
            )
        await self.app(scope, receive, send)
