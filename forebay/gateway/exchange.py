"""Per-request state the stages share, kept in the ASGI scope under `forebay`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forebay.catalog.catalog import Route

if TYPE_CHECKING:
    from forebay.gateway.keyring import ConsumerEntry

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
    consumer: str = ""  # the authenticated consumer; "" for anonymous clients
    consumer_entry: ConsumerEntry | None = None
    async_id: str | None = None
    bytes_sent: int = 0  # response body bytes, for the access log
    cache: str | None = None  # the cache's result: hit, miss, stale, ...
    # A sample of an error answer for error capture: its headers and first bytes.
    sample_headers: list[tuple[bytes, bytes]] | None = None
    sample_body: bytes | None = None

    @property
    def endpoint_label(self) -> str:
        return self.route.name if self.route else "unmatched"


def exchange_of(scope: ASGIScope) -> Exchange:
    ex: Exchange = scope["forebay"]
    return ex
