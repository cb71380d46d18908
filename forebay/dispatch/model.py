"""The records of asynchronous processing."""

from __future__ import annotations

from dataclasses import dataclass, field

from forebay.policy.request_states import State


@dataclass(slots=True)
class StoredResponse:
    """The origin's final answer, kept to replay verbatim."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(slots=True)
class DeliveryAttempt:
    number: int
    started_at: float
    status: int | None = None
    latency: float | None = None
    error: str | None = None


@dataclass(slots=True)
class AcceptedRequest:
    """A request the gateway answered with 202 and owes the origin.

    `target` is the path and query as the client sent them; `headers` are the ones to
    forward, already cleaned of hop-by-hop headers and with the forwarding headers set.
    """

    id: str
    consumer: str
    endpoint_id: str | None
    endpoint: str
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    ordering_key: str
    fingerprint: str  # of method, target and body; "" when there is no idempotency key
    accepted_at: float
    idempotency_key: str | None = None
    callback: str | None = None
    state: State = State.QUEUED
    attempts: int = 0
    next_attempt_at: float = 0.0
    updated_at: float = 0.0
    response: StoredResponse | None = None
    history: list[DeliveryAttempt] = field(default_factory=list)
    callback_state: str | None = None

    def __post_init__(self) -> None:
        self.next_attempt_at = self.next_attempt_at or self.accepted_at
        self.updated_at = self.updated_at or self.accepted_at


@dataclass(frozen=True, slots=True)
class Finish:
    """What one delivery attempt came to, as the dispatcher records it."""

    attempt: DeliveryAttempt
    state: State  # SUCCEEDED, FAILED, DEAD, or QUEUED for a retry
    next_attempt_at: float | None = None
    response: StoredResponse | None = None
    counts: bool = True  # False: the request never reached the origin (refused connect)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    state: State | None = None
    endpoint_id: str | None = None
    consumer: str | None = None
    limit: int = 100
    before: str | None = None  # an id: list older ones (ids sort by acceptance time)
