"""The life of an accepted request, as a table of allowed transitions.

    queued ──claim──▶ in_flight ──2xx/3xx──────────▶ succeeded
      │  ▲               │ ──final 4xx/5xx─────────▶ failed
      │  └──retry────────┤ ──limits exhausted──────▶ dead ──replay──▶ queued
      │                  └──lease lost (crash)─────▶ in_flight (claimed again)
      └──cancel──▶ cancelled

`succeeded`, `failed` and `cancelled` are final: nothing leaves them. `dead` is final
for delivery and leaves only by an operator's explicit replay.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Event(StrEnum):
    CLAIM = "claim"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETRY = "retry"
    DIE = "die"
    CANCEL = "cancel"
    REPLAY = "replay"


FINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
DONE = FINAL | {State.DEAD}
PENDING = frozenset({State.QUEUED, State.IN_FLIGHT})

TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.QUEUED, Event.CLAIM): State.IN_FLIGHT,
    (State.QUEUED, Event.CANCEL): State.CANCELLED,
    # A lease that ran out (its holder crashed) lets another dispatcher claim it again.
    (State.IN_FLIGHT, Event.CLAIM): State.IN_FLIGHT,
    (State.IN_FLIGHT, Event.SUCCEED): State.SUCCEEDED,
    (State.IN_FLIGHT, Event.FAIL): State.FAILED,
    (State.IN_FLIGHT, Event.RETRY): State.QUEUED,
    (State.IN_FLIGHT, Event.DIE): State.DEAD,
    (State.DEAD, Event.REPLAY): State.QUEUED,
}


class InvalidTransition(ValueError):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"a request that is {state} cannot {event}")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    """The state after `event`, or InvalidTransition."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None
