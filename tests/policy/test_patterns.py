from __future__ import annotations

import pytest

from forebay.policy.patterns import matches, specificity, split_pattern


@pytest.mark.parametrize(
    ("pattern", "method", "template", "hit"),
    [
        ("POST /orders", "POST", "/orders", True),
        ("POST /orders", "GET", "/orders", False),
        ("POST /orders", "POST", "/orders/{id}", False),
        ("GET /reports/**", "GET", "/reports", True),
        ("GET /reports/**", "GET", "/reports/daily/{day}", True),
        ("GET /reports/**", "GET", "/reportsx", False),
        ("* /items/*", "DELETE", "/items/{id}", True),
        ("* /items/*", "DELETE", "/items/{id}/tags", False),
        ("PUT /orders/{id}", "PUT", "/orders/{id}", True),
        ("GET /**", "GET", "/", True),
        ("GET /", "GET", "/", True),
    ],
)
def test_matches(pattern: str, method: str, template: str, hit: bool) -> None:
    m, p = split_pattern(pattern)
    assert matches(m, p, method, template) is hit


@pytest.mark.parametrize("bad", ["POST", "/orders", "POST orders", ""])
def test_split_pattern_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="METHOD /path"):
        split_pattern(bad)


def test_literal_beats_glob_and_longer_beats_shorter() -> None:
    ordered = sorted(["/**", "/reports/**", "/reports/daily", "/r*"], key=specificity, reverse=True)
    assert ordered[0] == "/reports/daily"
    assert ordered[1] == "/reports/**"
    assert ordered[-1] == "/**"
