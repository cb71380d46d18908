from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.freshness import (
    CacheRules,
    current_age,
    is_fresh,
    parse_cache_control,
    verdict,
    within,
)

RULES = CacheRules(ttl=60)
ORIGIN = CacheRules(ttl=60, respect_origin=True, stale_while_revalidate=5, stale_if_error=30)


def test_parse_cache_control() -> None:
    cc = parse_cache_control(['max-age=10, private="set-cookie, x"', "No-Store", 'x="1"'])
    assert cc == {"max-age": "10", "private": "set-cookie, x", "no-store": None, "x": "1"}
    assert parse_cache_control(["max-age=1, max-age=2"]) == {"max-age": "1"}


@pytest.mark.parametrize(
    ("status", "cc", "kwargs", "reason"),
    [
        (500, [], {}, "status"),
        (206, [], {}, "status"),
        (200, ["no-store"], {}, "no-store"),
        (200, ["private"], {}, "private"),
        (200, ['private="x"'], {}, "private"),
        (200, [], {"vary_star": True}, "vary"),
        (200, [], {"set_cookie": True}, "set-cookie"),
        (200, [], {"authorization": True}, "authorization"),
        (200, ["max-age=60"], {"authorization": True}, "authorization"),
    ],
)
def test_not_stored(status: int, cc: list[str], kwargs: dict[str, bool], reason: str) -> None:
    v = verdict(status, cc, RULES, **kwargs)  # type: ignore[arg-type]
    assert not v.store
    assert v.reason == reason


@pytest.mark.parametrize(
    ("cc", "auth"),
    [(["public"], True), (["s-maxage=5"], True), (["must-revalidate"], True), ([], False)],
)
def test_authorization_rule(cc: list[str], auth: bool) -> None:
    v = verdict(200, cc, RULES, authorization=auth)
    assert v.store
    assert v.shared_with_authorization is auth


@pytest.mark.parametrize(
    ("status", "cc", "kwargs", "rules", "ttl", "swr", "sie"),
    [
        (200, [], {}, RULES, 60, 0, 0),
        (404, [], {}, RULES, 60, 0, 0),
        (200, ["max-age=5"], {}, RULES, 60, 0, 0),  # the endpoint's TTL unless told
        (200, ["max-age=5"], {}, ORIGIN, 5, 5, 30),
        (200, ["max-age=5, s-maxage=9"], {}, ORIGIN, 9, 5, 30),
        (200, [], {}, ORIGIN, 60, 5, 30),  # the origin says nothing: the TTL
        (200, ["max-age=5, stale-while-revalidate=7"], {}, ORIGIN, 5, 7, 30),
        (200, ["max-age=5, stale-if-error=99"], {}, ORIGIN, 5, 5, 99),
        (200, ["no-cache"], {}, ORIGIN, 0, 5, 30),
        (200, ["no-cache"], {}, RULES, 0, 0, 0),
        (200, ["max-age=5, must-revalidate"], {}, ORIGIN, 5, 0, 0),
        (200, ["proxy-revalidate"], {}, ORIGIN, 60, 0, 0),
        (
            200,
            [],
            {"date": "Sun, 06 Nov 1994 08:49:37 GMT", "expires": "Sun, 06 Nov 1994 08:50:07 GMT"},
            ORIGIN,
            30,
            5,
            30,
        ),
        (200, [], {"date": "Sun, 06 Nov 1994 08:49:37 GMT", "expires": "0"}, ORIGIN, 0, 5, 30),
        (200, ["public"], {"set_cookie": True}, RULES, 60, 0, 0),
    ],
)
def test_lifetimes(
    status: int,
    cc: list[str],
    kwargs: dict[str, str],
    rules: CacheRules,
    ttl: float,
    swr: float,
    sie: float,
) -> None:
    v = verdict(status, cc, rules, **kwargs)  # type: ignore[arg-type]
    assert v.store, v
    assert (v.ttl, v.stale_while_revalidate, v.stale_if_error) == (ttl, swr, sie)


def test_public_and_initial_age() -> None:
    v = verdict(200, ["public, max-age=100"], ORIGIN, age="40")
    assert v.public and v.initial_age == 40
    assert verdict(200, [], RULES, age="junk").initial_age == 0


@given(
    st.floats(0, 1e6),
    st.floats(0, 1e6),
    st.floats(0, 1e4),
    st.floats(0, 1e4),
    st.floats(0, 1e4),
)
def test_ages_and_grace_periods(
    initial: float, stored: float, kept: float, ttl: float, grace: float
) -> None:
    age = current_age(initial, stored, stored + kept)
    assert age >= initial
    if is_fresh(ttl, age):
        assert age < ttl
    if within(ttl, grace, age):
        assert not is_fresh(ttl, age) or age < ttl + grace
        assert grace > 0
    assert current_age(initial, stored, stored - 1) == initial  # clocks going back: no negatives


@given(st.sampled_from(["no-store", "private", "no-store, max-age=60", "private, public"]))
def test_no_store_and_private_always_win(cc: str) -> None:
    for rules in (RULES, ORIGIN):
        assert not verdict(200, [cc], rules).store
