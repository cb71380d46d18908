"""The store protocols. Every backend (memory, SQLite, Redis) implements the same ones and
passes the same behaviour tests, so callers never know which they have.

A `Store` is a set of small stores, one per kind of record; later kinds (the request
queue, idempotency keys, cache entries, rate-limit counters) join as further attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from forebay.catalog.endpoint import Endpoint


class EndpointStore(Protocol):
    async def list(self) -> list[Endpoint]:
        """Every endpoint, in no particular order."""

    async def get(self, endpoint_id: str) -> Endpoint | None: ...

    async def save(self, endpoints: Sequence[Endpoint]) -> None:
        """Insert or replace these records, all or none, and bump the version."""

    async def delete(self, endpoint_id: str) -> bool: ...

    async def version(self) -> int:
        """A number that changes whenever any endpoint does; cheap enough to poll."""


class Store(Protocol):
    url: str

    @property
    def endpoints(self) -> EndpointStore: ...

    async def close(self) -> None: ...
