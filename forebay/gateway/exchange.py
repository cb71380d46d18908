"""Per-request state the stages share, kept in the ASGI scope under `forebay`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from forebay.catalog.catalog import Route

ASGIScope = dict[str, Any]
ASGIMessage = dict[str, Any]


def random_bytes(n: int) -> bytes:
    """Unique, not secret (trace ids): no system call per request."""
    return random.getrandbits(8 * n).to_bytes(n, "big")


def new_request_id() -> str:
    # 64 random bits: unique enough to find a request in the logs, short enough to read.
    # Not a secret, so the fast generator will do (no system call per request).
    return f"{random.getrandbits(64):016x}"


@dataclass(slots=True)
class Exchange:
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    route: Route | None = None
    status: int = 0
    response_started: bool = False
    origin_seconds: float | None = None
    error: str | None = None
    consumer: str = ""  # the authenticated consumer; "" while auth is off
    async_id: str | None = None

    @property
    def endpoint_label(self) -> str:
        return self.route.name if self.route else "unmatched"


def exchange_of(scope: ASGIScope) -> Exchange:
    ex: Exchange = scope["forebay"]
    return ex
