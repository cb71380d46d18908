"""The store protocols. Every backend (memory, SQLite, Redis) implements the same ones and
passes the same behaviour tests, so callers never know which they have.

A `Store` is a set of small stores, one per kind of record; later kinds (the request
queue, idempotency keys, cache entries, rate-limit counters) join as further attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from forebay.catalog.endpoint import Endpoint
from forebay.dispatch.model import AcceptedRequest, Finish, RequestFilter
from forebay.policy.idempotency import KeyRecord
from forebay.policy.shared_limit import Share, SharingRules


class EndpointStore(Protocol):
    async def list(self) -> list[Endpoint]:
        """Every endpoint, in no particular order."""

    async def get(self, endpoint_id: str) -> Endpoint | None: ...

    async def save(self, endpoints: Sequence[Endpoint]) -> None:
        """Insert or replace these records, all or none, and bump the version."""

    async def delete(self, endpoint_id: str) -> bool: ...

    async def version(self) -> int:
        """A number that changes whenever any endpoint does; cheap enough to poll."""


class RequestStore(Protocol):
    """The durable queue of accepted requests.

    Requests with the same ordering key form a lane, delivered one at a time in
    acceptance order; lanes are independent. A claim leases the head of a due lane to
    one owner; a lease that runs out (its owner died) lets another owner claim it again.
    """

    async def accept(self, batch: Sequence[AcceptedRequest], key_ttl: float) -> list[str | None]:
        """Store the batch durably in one commit. For each item: None when stored, or the
        id of the request that already holds its idempotency key (nothing stored)."""

    async def key(self, consumer: str, key: str, now: float) -> KeyRecord | None:
        """The unexpired record of an idempotency key."""

    async def get(self, request_id: str) -> AcceptedRequest | None: ...

    async def find(self, where: RequestFilter) -> list[AcceptedRequest]:
        """Newest first, without bodies or attempt history."""

    async def claim(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AcceptedRequest]:
        """Lease up to `limit` heads of due lanes to `owner`."""

    async def renew(self, ids: Sequence[str], owner: str, lease_until: float) -> None: ...

    async def finish(self, request_id: str, owner: str, result: Finish, now: float) -> bool:
        """Record an attempt and its consequence; False if `owner` no longer holds the lease."""

    async def finish_many(
        self, results: Sequence[tuple[str, Finish]], owner: str, now: float
    ) -> list[bool]:
        """`finish` for several requests in one commit: one answer per item, in order."""

    async def release(self, owner: str, now: float, ids: Sequence[str] | None = None) -> int:
        """Hand back every lease `owner` holds (or only those of `ids`), unattempted: a
        clean stop, or claimed requests a dispatcher will not send soon after all."""

    async def lease_owners(self) -> list[str]: ...

    async def cancel(self, request_id: str, now: float) -> AcceptedRequest | None:
        """Cancel a queued request; returns the request as it is afterwards."""

    async def replay(self, request_ids: Sequence[str], now: float) -> int:
        """Queue dead requests again; returns how many were dead."""

    async def counts(self) -> dict[str, int]:
        """Requests per state."""

    async def sweep(self, now: float, keep_done: float) -> int:
        """Forget expired idempotency keys, and requests that succeeded, failed or were
        cancelled more than `keep_done` ago. Dead requests stay until replayed."""

    async def set_callback_state(self, request_id: str, state: str) -> None:
        """`pending`, then `delivered`, `failed` or `refused`."""

    async def pending_callbacks(self, limit: int) -> list[AcceptedRequest]:
        """Done requests whose callback has not been sent (after a restart)."""


class GovernorStore(Protocol):
    """The one in-flight limit that several processes' governors share
    (forebay/policy/shared_limit.py); each call applies `sync` atomically."""

    async def sync(
        self, member: str, ratio: float, hold_for: float, initial: float, rules: SharingRules
    ) -> Share: ...

    async def leave(self, member: str) -> None: ...


class Store(Protocol):
    url: str

    @property
    def endpoints(self) -> EndpointStore: ...

    @property
    def requests(self) -> RequestStore: ...

    @property
    def governor(self) -> GovernorStore: ...

    async def close(self) -> None: ...
