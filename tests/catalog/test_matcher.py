from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forebay.catalog.matcher import Router

ROUTES = [
    ("GET", "/items", "list"),
    ("POST", "/items", "create"),
    ("GET", "/items/{id}", "get"),
    ("GET", "/items/new", "new-form"),
    ("GET", "/items/{id}/tags/{tag}", "tag"),
    ("GET", "/files/{name}.json", "json-file"),
    ("GET", "/files/{path}", "file"),
    ("GET", "/v1/{org}/{repo}/pulls/{n}", "pull"),
    ("GET", "/v1/{org}/settings/x", "settings"),
    ("GET", "/", "root"),
]


@pytest.fixture(scope="module")
def router() -> Router[str]:
    return Router(ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "target", "known"),
    [
        ("GET", "/items", "list", True),
        ("GET", "/items/", "list", True),
        ("POST", "/items", "create", True),
        ("DELETE", "/items", None, True),
        ("GET", "/items/5", "get", True),
        ("GET", "/items/new", "new-form", True),
        ("GET", "/items/5/tags/red", "tag", True),
        ("GET", "/items/5/tags", None, False),
        ("GET", "/files/a.json", "json-file", True),
        ("GET", "/files/a.txt", "file", True),
        ("GET", "/v1/acme/settings/pulls/3", "pull", True),  # backtracks out of "settings"
        ("GET", "/v1/acme/settings/x", "settings", True),
        ("GET", "/", "root", True),
        ("HEAD", "/items/5", "get", True),
        ("GET", "/nothing/here", None, False),
        ("GET", "/items/caf%C3%A9", "get", True),
    ],
)
def test_match(
    router: Router[str], method: str, path: str, target: str | None, known: bool
) -> None:
    assert router.match(method, path) == (target, known)


def test_allowed(router: Router[str]) -> None:
    assert router.allowed("/items") == ["GET", "POST"]
    assert router.allowed("/nope") == []


@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=5))
def test_every_literal_route_matches_itself(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    r: Router[str] = Router([("GET", path, path), ("GET", "/{x}", "param")])
    assert r.match("GET", path)[0] == path


class CountingRouter(Router[int]):
    def __init__(self, *a: object) -> None:
        self.steps = 0
        super().__init__(*a)  # type: ignore[arg-type]

    def _walk(self, node, segs, i):  # type: ignore[no-untyped-def]
        self.steps += 1
        return super()._walk(node, segs, i)


def test_lookup_work_does_not_grow_with_the_catalog() -> None:
    # Count the trie steps of one lookup: the same for 10 routes and 10,000.
    small = CountingRouter(("GET", f"/r{i}/{{id}}", i) for i in range(10))
    large = CountingRouter(("GET", f"/r{i}/{{id}}", i) for i in range(10_000))
    assert small.match("GET", "/r7/42") == (7, True)
    assert large.match("GET", "/r7/42") == (7, True)
    assert large.steps == small.steps == 3
