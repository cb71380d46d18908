from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.request_states import (
    DONE,
    FINAL,
    PENDING,
    Event,
    InvalidTransition,
    State,
    next_state,
)

Q, F, OK, NO, DEAD, X = (
    State.QUEUED,
    State.IN_FLIGHT,
    State.SUCCEEDED,
    State.FAILED,
    State.DEAD,
    State.CANCELLED,
)

# The diagram in the module's docstring, written out again by hand.
ALLOWED = {
    (Q, Event.CLAIM): F,
    (Q, Event.CANCEL): X,
    (F, Event.CLAIM): F,
    (F, Event.SUCCEED): OK,
    (F, Event.FAIL): NO,
    (F, Event.RETRY): Q,
    (F, Event.DIE): DEAD,
    (DEAD, Event.REPLAY): Q,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Event)))
def test_every_state_and_event(state: State, event: Event) -> None:
    if (state, event) in ALLOWED:
        assert next_state(state, event) == ALLOWED[(state, event)]
    else:
        with pytest.raises(InvalidTransition) as e:
            next_state(state, event)
        assert (e.value.state, e.value.event) == (state, event)
        assert isinstance(e.value, ValueError)
        assert str(state) in str(e.value) and str(event) in str(e.value)


def test_the_groups_of_states() -> None:
    assert {OK, NO, X} == FINAL
    assert FINAL | {DEAD} == DONE
    assert {Q, F} == PENDING
    assert not DONE & PENDING
    assert set(State) == DONE | PENDING


@given(st.sampled_from(sorted(FINAL)), st.lists(st.sampled_from(list(Event))))
def test_no_event_leads_out_of_a_final_state(state: State, events: list[Event]) -> None:
    for event in events:
        with pytest.raises(InvalidTransition):
            next_state(state, event)


@given(st.lists(st.sampled_from(list(Event)), max_size=50))
def test_walks_never_leave_final_and_leave_dead_only_by_replay(events: list[Event]) -> None:
    state = Q
    for event in events:
        try:
            after = next_state(state, event)
        except InvalidTransition:
            continue
        assert state not in FINAL
        if state == DEAD:
            assert (event, after) == (Event.REPLAY, Q)
        if event == Event.REPLAY:
            assert state == DEAD
        state = after
