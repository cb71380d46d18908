"""An in-process store for tests and throwaway runs; it forgets everything on exit."""

from __future__ import annotations

from collections.abc import Sequence

from forebay.catalog.endpoint import Endpoint
from forebay.store.consumers import MemoryConsumerStore
from forebay.store.errors_log import MemoryErrorLog
from forebay.store.governor import MemoryGovernorStore
from forebay.store.memory_requests import MemoryRequestStore


class MemoryEndpointStore:
    def __init__(self) -> None:
        self._rows: dict[str, Endpoint] = {}
        self._version = 0

    async def list(self) -> list[Endpoint]:
        return [e.model_copy(deep=True) for e in self._rows.values()]

    async def get(self, endpoint_id: str) -> Endpoint | None:
        found = self._rows.get(endpoint_id)
        return found.model_copy(deep=True) if found else None

    async def save(self, endpoints: Sequence[Endpoint]) -> None:
        for e in endpoints:
            self._rows[e.id] = e.model_copy(deep=True)
        self._version += 1

    async def delete(self, endpoint_id: str) -> bool:
        found = self._rows.pop(endpoint_id, None) is not None
        self._version += found
        return found

    async def version(self) -> int:
        return self._version


class MemoryStore:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.endpoints = MemoryEndpointStore()
        self.requests = MemoryRequestStore()
        self.consumers = MemoryConsumerStore()
        self.errors = MemoryErrorLog()
        self.governor = MemoryGovernorStore()

    async def close(self) -> None:
        pass
