from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.policy.invalidation import (
    Targets,
    bind,
    location_path,
    parent_collection,
    pattern_matches,
    targets,
)


@pytest.mark.parametrize(
    ("method", "path", "template", "invalidates", "loc", "cloc", "paths", "patterns"),
    [
        ("PUT", "/items/5", "/items/{id}", [], None, None, {"/items/5", "/items"}, ()),
        ("DELETE", "/items/5/", "/items/{id}", [], None, None, {"/items/5", "/items"}, ()),
        (
            "PATCH",
            "/users/7/orders/3",
            "/users/{u}/orders/{o}",
            [],
            None,
            None,
            {"/users/7/orders/3", "/users/7/orders"},
            (),
        ),
        # A collection: its parent is not touched unless the endpoint says so.
        ("POST", "/users/7/orders", "/users/{id}/orders", [], None, None, {"/users/7/orders"}, ()),
        (
            "POST",
            "/users/7/orders",
            "/users/{id}/orders",
            ["/users/{id}"],
            None,
            None,
            {"/users/7/orders", "/users/7"},
            (),
        ),
        ("POST", "/items", "/items", [], "/items/6", None, {"/items", "/items/6"}, ()),
        (
            "POST",
            "/items",
            "/items",
            [],
            "http://api.example/items/6",
            "/items/6?x=1",
            {"/items", "/items/6"},
            (),
        ),
        ("POST", "/items", "/items", [], "/_forebay/requests/abc", None, {"/items"}, ()),
        ("POST", "/items/", "/items", [], "6", None, {"/items", "/items/6"}, ()),
        # No template (an unmatched path): the parent is invalidated to be safe.
        ("POST", "/a/b", None, [], None, None, {"/a/b", "/a"}, ()),
        ("POST", "/a", None, [], None, None, {"/a", "/"}, ()),
        # The root is the collection of a top-level item.
        ("PUT", "/5", "/{id}", [], None, None, {"/5", "/"}, ()),
        ("POST", "/items", "/items", [], None, None, {"/items"}, ()),
        # Patterns: unbound parameters and globs stay patterns.
        (
            "PUT",
            "/items/5",
            "/items/{id}",
            ["/reports/**", "/tags/{tag}"],
            None,
            None,
            {"/items/5", "/items"},
            ("/reports/**", "/tags/{tag}"),
        ),
        ("PUT", "/items/{}x", "/items/{name}x", [], None, None, {"/items/{}x", "/items"}, ()),
        ("GET", "/items/5", "/items/{id}", ["/x"], None, None, set(), ()),
        (
            "POST",
            "/shops/s1/items/i2/publish",
            "/shops/{s}/items/{i}/publish",
            ["/shops/{s}/items/{i}", "/shops/{s}"],
            None,
            None,
            {"/shops/s1/items/i2/publish", "/shops/s1/items/i2", "/shops/s1"},
            (),
        ),
    ],
)
def test_targets(
    method: str,
    path: str,
    template: str | None,
    invalidates: list[str],
    loc: str | None,
    cloc: str | None,
    paths: set[str],
    patterns: tuple[str, ...],
) -> None:
    assert targets(method, path, template, invalidates, loc, cloc) == Targets(
        frozenset(paths), patterns
    )


@pytest.mark.parametrize(
    ("template", "path", "bound"),
    [
        ("/items/{id}", "/items/5", {"id": "5"}),
        ("/users/{u}/orders/{o}", "/users/7/orders/3", {"u": "7", "o": "3"}),
        ("/files/{name}.json", "/files/a.b.json", {"name": "a.b"}),
        ("/items/{id}", "/items", None),
        ("/items/{id}", "/things/5", None),
        ("/items", "/items", {}),
    ],
)
def test_bind(template: str, path: str, bound: dict[str, str] | None) -> None:
    assert bind(template, path) == bound


@pytest.mark.parametrize(
    ("path", "template", "parent"),
    [
        ("/items/5", "/items/{id}", "/items"),
        ("/items", "/items", None),
        ("/items/5/publish", "/items/{id}/publish", None),
        ("/items/5/publish", None, "/items/5"),
        ("/", None, None),
        ("/items/5", "/other/{a}/{b}", None),
    ],
)
def test_parent_collection(path: str, template: str | None, parent: str | None) -> None:
    assert parent_collection(path, template) == parent


@pytest.mark.parametrize(
    ("value", "hosts", "path"),
    [
        ("/items/6", (), "/items/6"),
        ("https://api.example/items/6?x=1", (), "/items/6"),
        ("https://elsewhere/items/6", ("api.example",), None),
        ("https://API.example/items/6", ("api.example",), "/items/6"),
        ("", (), None),
        (None, (), None),
        ("/_forebay/requests/x", (), None),
    ],
)
def test_location_path(value: str | None, hosts: tuple[str, ...], path: str | None) -> None:
    assert location_path(value, hosts) == path


@pytest.mark.parametrize(
    ("value", "base", "path"),
    [
        ("6", "/items/5", "/items/6"),
        ("6", "/items/", "/items/6"),
        ("./6?x=1", "/items", "/6"),
        ("../tags", "/items/5/notes", "/items/tags"),
        ("?page=2", "/items", "/items"),
        ("//elsewhere/items/6", "/items", "/items/6"),
        ("6", "/", "/6"),
        ("6?next=http://elsewhere/x", "/items/5", "/items/6"),
    ],
)
def test_a_relative_location_is_resolved_against_the_request(
    value: str, base: str, path: str
) -> None:
    assert location_path(value, base=base) == path


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("/reports/**", "/reports", True),
        ("/reports/**", "/reports/2024/05", True),
        ("/reports/**", "/reportsx", False),
        ("/items/*", "/items/5", True),
        ("/items/*", "/items/5/tags", False),
        ("/items/{id}", "/items/5", True),
        ("/items/{id}/tags", "/items/5/tags", True),
        ("/files/*.json", "/files/a.json", True),
        ("/files/*.json", "/files/a.txt", False),
        ("/**", "/anything/at/all", True),
    ],
)
def test_pattern_matches(pattern: str, path: str, hit: bool) -> None:
    assert pattern_matches(pattern, path) is hit


segment = st.text("abcxyz0189-", min_size=1, max_size=5)


@given(
    st.lists(segment, min_size=1, max_size=5), st.sampled_from(["POST", "PUT", "PATCH", "DELETE"])
)
def test_a_mutation_always_invalidates_its_path_and_parent(segs: list[str], method: str) -> None:
    path = "/" + "/".join(segs)
    template = "/" + "/".join([*segs[:-1], "{id}"])
    found = targets(method, path, template)
    assert path in found.paths
    assert "/" + "/".join(segs[:-1]) in found.paths  # the root for a top-level item
    assert found.patterns == ()
    # The template binds the last segment, and a pattern bound with it names the path.
    assert bind(template, path) == {"id": segs[-1]}
    assert targets(method, path, template, [template]).paths == found.paths


@given(st.lists(segment, min_size=1, max_size=5))
def test_double_star_covers_every_path_below(segs: list[str]) -> None:
    path = "/" + "/".join(segs)
    assert pattern_matches("/" + segs[0] + "/**", path)
    assert pattern_matches("/**", path)
