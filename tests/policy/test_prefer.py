from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.prefer import NONE, Preferences, parse_prefer

MAX_WAIT = 60.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], NONE),
        (["respond-async"], Preferences(True, None)),
        (["wait=5"], Preferences(False, 5.0)),
        (["wait=0"], Preferences(False, 0.0)),
        (["respond-async, wait=10"], Preferences(True, 10.0)),
        (["wait=10,respond-async"], Preferences(True, 10.0)),
        (["respond-async", "wait=10"], Preferences(True, 10.0)),  # two headers
        (['wait="7"'], Preferences(False, 7.0)),  # a quoted value
        (["respond-async; foo=bar, wait=3; x=y"], Preferences(True, 3.0)),  # parameters
        (["wait = 4"], Preferences(False, 4.0)),  # BWS around "="
        (["  respond-async  ,  "], Preferences(True, None)),
        (["RESPOND-ASYNC, Wait=4"], Preferences(True, 4.0)),  # names are case-insensitive
        (["wait=1000"], Preferences(False, MAX_WAIT)),  # capped
        (["respond-async, wait=61"], Preferences(True, MAX_WAIT)),
        (["wait=5, wait=9"], Preferences(False, 5.0)),  # the first one counts
        (["wait=soon, wait=9"], Preferences(False, 9.0)),  # a bad one does not
        (["wait=-1"], NONE),
        (["wait=abc"], NONE),
        (["wait="], NONE),
        (["wait"], NONE),
        (["wait=nan"], NONE),
        (["respond-async, wait=-3"], Preferences(True, None)),
        (["handling=lenient, return=minimal"], NONE),
        (["respond-asynchronously"], NONE),
        (["x-respond-async"], NONE),
        ([""], NONE),
    ],
)
def test_parse_prefer(headers: list[str], expected: Preferences) -> None:
    assert parse_prefer(headers, MAX_WAIT) == expected


def test_nothing_preferred_is_the_shared_none() -> None:
    assert parse_prefer(["return=minimal"], MAX_WAIT) is NONE


@given(st.integers(0, 10**9), st.floats(0, 3600))
def test_wait_is_capped(seconds: int, max_wait: float) -> None:
    assert parse_prefer([f"wait={seconds}"], max_wait).wait == min(seconds, max_wait)


@given(st.lists(st.text(max_size=40), max_size=4))
def test_any_header_parses_within_bounds(headers: list[str]) -> None:
    p = parse_prefer(headers, MAX_WAIT)
    assert p.wait is None or 0.0 <= p.wait <= MAX_WAIT
