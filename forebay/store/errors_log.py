"""Captured errors: the last few failed exchanges of each endpoint, with a redacted
sample of the request and the response, for the admin API and the dashboard.

Kept per endpoint (the endpoint id, or `unmatched`), at most `keep` each, newest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, Field


class CapturedError(BaseModel):
    at: float = Field(description="Seconds since the epoch.")
    endpoint_id: str = Field(description="The endpoint's id, or 'unmatched'.")
    endpoint: str = Field(description="'METHOD /template', or 'unmatched'.")
    kind: str = Field(
        description="origin-error (a 5xx from the origin), origin-unreachable, "
        "origin-timeout, connect-timeout, origin-bad-response, or a gateway problem type "
        "such as internal-error."
    )
    status: int
    request_id: str
    consumer: str
    method: str
    path: str
    query: str = ""
    request_headers: list[tuple[str, str]] = Field(default_factory=list)
    response_headers: list[tuple[str, str]] = Field(default_factory=list)
    response_body: str = Field("", description="The first bytes of the answer, as text.")
    latency_ms: float = 0.0
    origin_ms: float | None = None


class ErrorLog(Protocol):
    async def add(self, errors: Sequence[CapturedError], keep: int) -> None:
        """Store these and keep only the newest `keep` of each endpoint."""

    async def recent(self, endpoint_id: str | None = None, limit: int = 100) -> list[CapturedError]:
        """Newest first; of one endpoint, or of all."""

    async def clear(self, endpoint_id: str | None = None) -> int: ...


class MemoryErrorLog:
    def __init__(self) -> None:
        self._by_endpoint: dict[str, deque[CapturedError]] = {}

    async def add(self, errors: Sequence[CapturedError], keep: int) -> None:
        for e in errors:
            q = self._by_endpoint.setdefault(e.endpoint_id, deque())
            q.append(e.model_copy())
            while len(q) > keep:
                q.popleft()

    async def recent(self, endpoint_id: str | None = None, limit: int = 100) -> list[CapturedError]:
        if endpoint_id is not None:
            rows = list(self._by_endpoint.get(endpoint_id, ()))
        else:
            rows = [e for q in self._by_endpoint.values() for e in q]
        rows.sort(key=lambda e: e.at, reverse=True)
        return [e.model_copy() for e in rows[:limit]]

    async def clear(self, endpoint_id: str | None = None) -> int:
        if endpoint_id is None:
            n = sum(len(q) for q in self._by_endpoint.values())
            self._by_endpoint.clear()
            return n
        return len(self._by_endpoint.pop(endpoint_id, ()))
