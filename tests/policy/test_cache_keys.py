from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.cache_keys import (
    normalise_path,
    path_of,
    primary_key,
    sorted_query,
    vary_names,
    vary_values,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/items/5", "/items/5"),
        ("/items/5/", "/items/5"),
        ("//items///5", "/items/5"),
        ("/", "/"),
        ("", "/"),
        ("/%69tems/%7e5", "/items/~5"),  # unreserved characters decoded
        ("/a%2fb", "/a%2Fb"),  # an encoded slash stays encoded (upper-cased)
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/100%", "/100%"),  # a lone percent sign is kept as it is
        ("/x%4", "/x%4"),
    ],
)
def test_normalise_path(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("a=1", "a=1"),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("a=1&&b=2&", "a=1&b=2"),
    ],
)
def test_sorted_query(query: str, expected: str) -> None:
    assert sorted_query(query) == expected


def test_primary_key_and_its_path() -> None:
    assert primary_key("/items/", "b=2&a=1") == "/items?a=1&b=2"
    assert primary_key("/items", "") == "/items"
    assert path_of("/items?a=1") == "/items"
    assert path_of("/items") == "/items"


params = st.lists(
    st.tuples(st.text("abcxyz", min_size=1, max_size=3), st.text("0123", max_size=2)),
    max_size=6,
)


@given(params, st.randoms())
def test_query_order_never_changes_the_key(items: list[tuple[str, str]], rnd: object) -> None:
    pairs = [f"{k}={v}" for k, v in items]
    shuffled = list(pairs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert primary_key("/p", "&".join(pairs)) == primary_key("/p", "&".join(shuffled))


@given(st.lists(st.sampled_from(["a", "b", "%41", "%2F", "", "~"]), max_size=6))
def test_normalising_twice_changes_nothing(segments: list[str]) -> None:
    once = normalise_path("/" + "/".join(segments))
    assert normalise_path(once) == once
    assert once.startswith("/")
    assert "//" not in once


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ()),
        (["Accept-Encoding"], ("accept-encoding",)),
        (["Accept, accept-language", "Origin"], ("accept", "accept-language", "origin")),
        (["Accept, *"], None),
        ([" , "], ()),
    ],
)
def test_vary_names(values: list[str], expected: tuple[str, ...] | None) -> None:
    assert vary_names(values) == expected


def test_vary_values_in_name_order() -> None:
    headers = [(b"accept", b"text/html"), (b"x-a", b"1"), (b"accept", b"*/*")]
    assert vary_values(("accept", "accept-language"), headers) == ("text/html, */*", None)
    assert vary_values((), headers) == ()
